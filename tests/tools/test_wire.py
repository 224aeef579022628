"""tools/wire.py against a real server, plain and over TLS: accept key, masked commands, closes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from dronecam.core import protocol
from dronecam.core.websocket import OP_BINARY, OP_CLOSE, OP_TEXT, accept_key, close_payload
from dronecam.tools.wire import (
    ServerFrameError,
    check_handshake,
    client_frame,
    masked_text,
    read_frame,
)
from support import ListSource, host_server, seconds, synthetic_jpegs
from support_hardening import RawClient, shared_tls

# Bigger than 65535 bytes: the server's frames carry a 64-bit length.
LARGE_JPEGS = [jpeg for jpeg in synthetic_jpegs(3, 1920, 1088) if len(jpeg) > 65535]


@pytest.fixture(params=["ws", "wss"])
async def url(request) -> AsyncIterator[str]:
    """A running host server's URL, plain or behind TLS (RawClient takes the run's certificate)."""
    source = ListSource(synthetic_jpegs(3) + LARGE_JPEGS, fps=30)
    tls = shared_tls().server if request.param == "wss" else None
    async with host_server(source, ssl_context=tls) as server:
        assert server.url.startswith(request.param + "://")
        yield server.url


async def test_the_handshake_is_answered_with_the_accept_key(url):
    client = await RawClient.open(url)
    try:
        status, head = await client.handshake()
        assert status == 101
        check_handshake(head, client.accept)
        with pytest.raises(ConnectionError, match="wrong Sec-WebSocket-Accept"):
            check_handshake(head, accept_key("dGhlIHNhbXBsZSBub25jZQ=="))
    finally:
        client.close()


async def test_a_refused_handshake_is_a_connection_error(url):
    with pytest.raises(ConnectionError, match=r"handshake refused: HTTP/1\.1 4"):
        await RawClient.connect(url.replace("/ws", "/elsewhere"))


async def test_masked_commands_are_answered(url):
    client = await RawClient.connect(url)
    try:
        assert (await client.next_json())["type"] == "welcome"
        client.send(masked_text(protocol.CLOCK))
        assert (await client.next_json(type="clock"))["server_us"] > 0
        client.send(masked_text("get_stats"))
        assert (await client.next_json(type="stats"))["clients"] == 1
        client.send(masked_text("ping"))
        async with asyncio.timeout(seconds(5)):
            while await client.next_text() != protocol.PONG:
                pass
    finally:
        client.close()


async def test_frames_of_every_length_form_are_read_whole(url):
    sizes = set()
    client = await RawClient.connect(url)
    try:
        async with asyncio.timeout(seconds(5)):
            while not {"16-bit", "64-bit"} <= sizes:
                opcode, payload = await client.read_frame()
                if opcode == OP_BINARY:
                    assert protocol.read_tag(payload) is not None
                    assert payload.endswith(protocol.EOI)
                    sizes.add("64-bit" if len(payload) > 65535 else "16-bit")
                else:
                    assert opcode == OP_TEXT and payload.startswith(b"{")
    finally:
        client.close()


async def test_close_frames_are_parsed(url):
    client = await RawClient.connect(url)
    try:
        client.send(client_frame(OP_CLOSE, close_payload(protocol.CLOSE_NORMAL, "bye")))
        closed = await client.close_frame()
        assert closed is not None and closed[0] == protocol.CLOSE_NORMAL
        assert await client.wait_closed(seconds(5)) < seconds(5)
    finally:
        client.close()
    client = await RawClient.connect(url)
    try:
        client.send(client_frame(OP_TEXT, b"ping", mask=False))
        closed = await client.close_frame()
        assert closed is not None and closed[0] == protocol.CLOSE_PROTOCOL_ERROR
        assert closed[1]  # the server says why
    finally:
        client.close()


async def test_a_masked_server_frame_is_refused():
    reader = asyncio.StreamReader()
    reader.feed_data(client_frame(OP_TEXT, b"masked"))
    with pytest.raises(ServerFrameError, match="never masked"):
        await read_frame(reader.readexactly)
