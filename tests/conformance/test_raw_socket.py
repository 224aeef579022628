"""The contract at the byte level: a hand-written client, plain HTTP, wrong paths."""

import asyncio
import base64
import hashlib
import os
import struct

from dronecam.core import protocol
from support import seconds

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3


def _host_port(url: str) -> tuple[str, int]:
    host, port = url.split("//")[1].split("/")[0].split(":")
    return host, int(port)


async def _request(url: str, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(*_host_port(url))
    writer.write(request)
    try:
        return await asyncio.wait_for(reader.read(4096), seconds(5))
    finally:
        writer.close()


def _masked(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


async def _read_frame(reader) -> tuple[int, bytes]:
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack(">H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack(">Q", await reader.readexactly(8))
    assert not second & 0x80, "server frames are never masked"
    return first & 0x0F, await reader.readexactly(length)


async def test_raw_socket_client(start_server):
    async with start_server() as server:
        host, port = _host_port(server.url)
        reader, writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(os.urandom(16))
        writer.write(
            b"GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
            % (host.encode(), port, key)
        )
        async with asyncio.timeout(seconds(5)):
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101")
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            assert b"Sec-WebSocket-Accept: " + accept in head
            opcode, payload = await _read_frame(reader)
            assert opcode == 1 and b'"welcome"' in payload
            writer.write(_masked(1, b"ping"))
            binary = 0
            while True:
                opcode, payload = await _read_frame(reader)
                if opcode == 2:
                    binary += 1
                    assert protocol.read_tag(payload) is not None
                elif payload == b"pong":
                    break
            writer.write(_masked(8, struct.pack(">H", 1000)))
            while opcode != 8:
                opcode, payload = await _read_frame(reader)
            assert struct.unpack(">H", payload[:2])[0] == 1000
        writer.close()


async def test_plain_http_gets_a_short_non_200_answer(start_server):
    async with start_server() as server:
        for path in (b"/", b"/ws", b"/index.html"):
            answer = await _request(server.url, b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path)
            status = answer.split(b"\r\n")[0]
            assert status.startswith(b"HTTP/1.1 4"), status
            assert len(answer) < 1024
