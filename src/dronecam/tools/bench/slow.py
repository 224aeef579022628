"""The benchmark's slow viewer: one frame every 200 ms, read straight from its socket."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

from ...core import protocol
from ...core.clock import ClockOffset, now_us
from ...core.websocket import OP_BINARY, OP_CLOSE, OP_TEXT
from ..wire import (
    ServerFrameError,
    check_handshake,
    handshake_request,
    masked_text,
    open_socket,
    read_frame,
)


class SlowClient:
    """A viewer that takes one frame every `period_s` straight from its socket.

    It reads exactly one message at a time, so whatever waits for it is in the kernel's
    buffers (and, without credit flow, the server's): its lag behind live is theirs.
    """

    def __init__(self, url: str, period_s: float = 0.2, credit: int = 0, rcvbuf: int = 0) -> None:
        self.url = url
        self.period_s = period_s
        self.credit = credit
        self.rcvbuf = rcvbuf
        self.sock: socket.socket | None = None
        self.pending = bytearray()
        self.clock = ClockOffset()
        self.connected_s = 0.0
        self.lags: list[tuple[float, float]] = []  # (seconds since connect, lag ms)
        self.frames = 0
        self.credit_granted = False
        self.error = ""
        self.until_s = 0.0  # monotonic seconds; the bench moves it once it knows the window

    async def run(self, until_s: float) -> None:
        self.until_s = until_s
        loop = asyncio.get_running_loop()
        try:
            self.sock = sock = await open_socket(self.url, self.rcvbuf)
            request, accept = handshake_request(self.url)
            await loop.sock_sendall(sock, request)
            while b"\r\n\r\n" not in self.pending:
                chunk = await loop.sock_recv(sock, 4096)
                if not chunk:
                    raise ConnectionError("closed during handshake")
                self.pending += chunk
            end = self.pending.find(b"\r\n\r\n") + 4
            check_handshake(bytes(self.pending[:end]), accept)
            del self.pending[:end]
            self.connected_s = time.monotonic()
            await self._probe_clock()
            if self.credit:
                await loop.sock_sendall(sock, masked_text("window %d" % self.credit))
            next_s = time.monotonic()
            while time.monotonic() < self.until_s:
                next_s += self.period_s
                await asyncio.sleep(max(0.0, next_s - time.monotonic()))
                await self._take_frame()
        except (OSError, ConnectionError, ServerFrameError) as error:
            self.error = str(error) or type(error).__name__
        finally:
            if self.sock is not None:
                self.sock.close()

    async def _probe_clock(self) -> None:
        assert self.sock is not None
        loop = asyncio.get_running_loop()
        for _ in range(3):
            sent_us = now_us()
            await loop.sock_sendall(self.sock, masked_text(protocol.CLOCK))
            while True:
                opcode, payload = await self._message()
                if opcode == OP_TEXT and payload.startswith(b'{"type": "clock"'):
                    self.clock.add(sent_us, now_us(), json.loads(payload)["server_us"])
                    break

    async def _take_frame(self) -> None:
        assert self.sock is not None
        loop = asyncio.get_running_loop()
        while True:
            opcode, payload = await self._message()
            if opcode == OP_TEXT and payload.startswith(b'{"type": "window"'):
                self.credit_granted = True
            if opcode == OP_BINARY:
                break
        tag = protocol.read_tag(payload)
        if tag is None:
            raise ConnectionError("a frame without a dronecam tag")
        self.frames += 1
        lag_ms = (now_us() + (self.clock.offset_us or 0) - tag[1]) / 1000
        self.lags.append((time.monotonic() - self.connected_s, lag_ms))
        if self.credit_granted:
            await loop.sock_sendall(self.sock, masked_text(protocol.ACK))

    async def _message(self) -> tuple[int, bytes]:
        opcode, payload = await read_frame(self._read)
        if opcode == OP_CLOSE:
            raise ConnectionError("closed by the server: %r" % payload[2:].decode(errors="replace"))
        return opcode, payload

    async def _read(self, size: int) -> bytes:
        """Exactly `size` bytes, taking from the socket no more than is missing."""
        assert self.sock is not None
        loop = asyncio.get_running_loop()
        while len(self.pending) < size:
            chunk = await loop.sock_recv(self.sock, size - len(self.pending))
            if not chunk:
                raise ConnectionError("closed by the server")
            self.pending += chunk
        data = bytes(self.pending[:size])
        del self.pending[:size]
        return data

    def figures(self, seconds: float) -> dict[str, Any]:
        return {
            "fps": self.frames / seconds if seconds else 0.0,
            "frames": self.frames,
            "lags": self.lags,
            "error": self.error,
            "credit": self.credit if self.credit_granted else 0,
        }
