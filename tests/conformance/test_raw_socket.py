"""The contract at the byte level: the raw-wire client (tools/wire.py), plain HTTP, wrong paths."""

import asyncio

from dronecam.core import protocol
from dronecam.core.websocket import OP_CLOSE, close_payload
from dronecam.tools.wire import client_frame, masked_text
from support import seconds
from support_hardening import RawClient


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


async def test_raw_socket_client(start_server):
    async with start_server() as server:
        client = await RawClient.connect(server.url)  # a 101 with the right accept key
        try:
            async with asyncio.timeout(seconds(5)):
                opcode, payload = await client.read_frame()
                assert opcode == 1 and b'"welcome"' in payload
                client.send(masked_text("ping"))
                binary = 0
                while True:
                    opcode, payload = await client.read_frame()
                    if opcode == 2:
                        binary += 1
                        assert protocol.read_tag(payload) is not None
                    elif payload == b"pong":
                        break
                client.send(client_frame(OP_CLOSE, close_payload(1000)))
                closed = await client.close_frame()
                assert closed and closed[0] == 1000, closed
        finally:
            client.close()


async def test_plain_http_gets_a_short_non_200_answer(start_server):
    async with start_server() as server:
        for path in (b"/", b"/ws", b"/index.html"):
            answer = await _request(server.url, b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path)
            status = answer.split(b"\r\n")[0]
            assert status.startswith(b"HTTP/1.1 4"), status
            assert len(answer) < 1024
