"""Small helpers for reading the wire in conformance tests."""

import asyncio
import json

from support import seconds


async def next_text(ws, timeout_s: float = 5) -> str:
    """The next text message, skipping frames."""
    async with asyncio.timeout(seconds(timeout_s)):
        while True:
            message = await ws.recv()
            if isinstance(message, str):
                return message


async def next_plain_text(ws, timeout_s: float = 5) -> str:
    """The next text message that is not JSON (such as "pong"), skipping the rest."""
    async with asyncio.timeout(seconds(timeout_s)):
        while True:
            text = await next_text(ws, timeout_s)
            if not text.startswith("{"):
                return text


async def next_json(ws, message_type: str, timeout_s: float = 5) -> dict:
    """The next JSON message of `message_type`, skipping frames and other messages."""
    async with asyncio.timeout(seconds(timeout_s)):
        while True:
            text = await next_text(ws, timeout_s)
            if text.startswith("{"):
                data = json.loads(text)
                if data.get("type") == message_type:
                    return data


async def next_frames(ws, count: int, timeout_s: float = 5) -> list[bytes]:
    frames = []
    async with asyncio.timeout(seconds(timeout_s)):
        while len(frames) < count:
            message = await ws.recv()
            if isinstance(message, bytes):
                frames.append(message)
    return frames


async def frames_during(ws, duration_s: float) -> int:
    """How many frames arrive in `duration_s` seconds of reading."""
    count = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + duration_s
    while (left := end - loop.time()) > 0:
        try:
            message = await asyncio.wait_for(ws.recv(), left)
        except TimeoutError:
            break
        count += isinstance(message, bytes)
    return count
