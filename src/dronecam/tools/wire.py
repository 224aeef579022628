"""One raw-wire WebSocket client: what the benchmark and the hostile tests send and read.

Client frames are masked (RFC 6455 §5.3) unless a test says otherwise; the accept key comes
from `core.websocket`, the same code both servers answer with. `RawClient` reads through
asyncio streams; the benchmark's clients share the handshake and framing helpers but read
their own way (bench/clients.py parses in place, bench/slow.py takes only what it needs).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import ssl
import struct
import time
from collections.abc import Awaitable, Callable
from typing import cast
from urllib.parse import urlsplit

from ..core.protocol import CLOSE_NO_STATUS
from ..core.websocket import OP_BINARY, OP_CLOSE, OP_PONG, OP_TEXT, accept_key


def client_frame(
    opcode: int, payload: bytes = b"", fin: bool = True, mask: bool = True, rsv: int = 0
) -> bytes:
    """One client frame, masked unless told otherwise, with any opcode and flags (RFC 6455 §5.2)."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    size = len(payload)
    mask_bit = 0x80 if mask else 0
    if size < 126:
        header = struct.pack(">BB", first, mask_bit | size)
    elif size < 65536:
        header = struct.pack(">BBH", first, mask_bit | 126, size)
    else:
        header = struct.pack(">BBQ", first, mask_bit | 127, size)
    if not mask:
        return header + payload
    key = os.urandom(4)
    masked = bytes(byte ^ key[i % 4] for i, byte in enumerate(payload))
    return header + key + masked


def masked_text(text: str) -> bytes:
    """A short text command as a client sends it."""
    return client_frame(OP_TEXT, text.encode())


def masked_pong(payload: bytes) -> bytes:
    return client_frame(OP_PONG, payload)


def handshake_request(url: str, extra_headers: tuple[str, ...] = ()) -> tuple[bytes, str]:
    """The upgrade request for a ws:// URL and the Sec-WebSocket-Accept it must be answered with."""
    parts = urlsplit(url)
    path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET %s HTTP/1.1" % path,
        "Host: %s" % parts.netloc,
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: %s" % key,
        "Sec-WebSocket-Version: 13",
        *extra_headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), accept_key(key)


def check_handshake(response: bytes, accept: str) -> None:
    """Raise ConnectionError unless `response` is a 101 with the right Sec-WebSocket-Accept."""
    status, *lines = response.decode("latin-1").split("\r\n")
    if not status.startswith("HTTP/1.1 101"):
        raise ConnectionError("handshake refused: %s" % status)
    headers = dict(line.split(":", 1) for line in lines if ":" in line)
    answers = [v.strip() for k, v in headers.items() if k.lower() == "sec-websocket-accept"]
    if answers != [accept]:
        raise ConnectionError("handshake answered with a wrong Sec-WebSocket-Accept")


class ServerFrameError(Exception):
    """A server frame no client may accept (masked, or not the message expected)."""


async def read_frame(read_exactly: Callable[[int], Awaitable[bytes]]) -> tuple[int, bytes]:
    """(opcode, payload) of the next server frame, read with `read_exactly(size)` (RFC 6455 §5.2)."""
    first, second = await read_exactly(2)
    if second & 0x80:
        raise ServerFrameError("server frames are never masked")
    size = second & 0x7F
    if size == 126:
        (size,) = struct.unpack(">H", await read_exactly(2))
    elif size == 127:
        (size,) = struct.unpack(">Q", await read_exactly(8))
    return first & 0x0F, await read_exactly(size)


async def open_socket(url: str, receive_buffer_bytes: int = 0) -> socket.socket:
    """A non-blocking TCP socket connected to a ws(s):// URL's host; the receive buffer set first."""
    parts = urlsplit(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if receive_buffer_bytes:
            # Before connecting: the TCP window scale is agreed in the handshake.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer_bytes)
        sock.setblocking(False)
        port = parts.port or (443 if parts.scheme == "wss" else 80)
        await asyncio.get_running_loop().sock_connect(sock, (parts.hostname, port))
    except BaseException:
        sock.close()
        raise
    return sock


class RawClient:
    """A WebSocket client on a bare socket, to send what no library would and read frame by frame."""

    timeout_s = 5.0  # how long one answer from the server may take

    def __init__(self, url: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.url = url
        self.reader = reader
        self.writer = writer
        self.transport = cast(asyncio.Transport, writer.transport)  # it reads as well
        self.accept = ""  # the Sec-WebSocket-Accept the last handshake must be answered with

    @classmethod
    async def open(
        cls, url: str, receive_buffer_bytes: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> RawClient:
        """Connected (over TLS with `ssl_context`), nothing sent yet."""
        sock = await open_socket(url, receive_buffer_bytes)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    sock=sock,
                    ssl=ssl_context,
                    server_hostname=urlsplit(url).hostname if ssl_context else None,
                ),
                cls.timeout_s,  # the TLS handshake, if any
            )
        except BaseException:
            sock.close()
            raise
        return cls(url, reader, writer)

    @classmethod
    async def connect(
        cls, url: str, receive_buffer_bytes: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> RawClient:
        """Open and complete a valid handshake: ConnectionError unless 101 with the right accept."""
        client = await cls.open(url, receive_buffer_bytes, ssl_context)
        try:
            _, head = await client.handshake()
            check_handshake(head, client.accept)
        except BaseException:
            client.close()
            raise
        return client

    async def handshake(self, extra_headers: tuple[str, ...] = ()) -> tuple[int, bytes]:
        """Send an upgrade request with `extra_headers`: (status, raw head) of the answer."""
        request, self.accept = handshake_request(self.url, extra_headers)
        self.send(request)
        return await self.read_response()

    async def read_response(self) -> tuple[int, bytes]:
        """(status, raw head) of the server's HTTP response, or (0, b"") on EOF."""
        try:
            head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), self.timeout_s)
        except asyncio.IncompleteReadError:
            return 0, b""
        return int(head.split(b" ", 2)[1]), head

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def read_frame(self) -> tuple[int, bytes]:
        """(opcode, payload) of the next server frame; raises IncompleteReadError at EOF."""
        return await read_frame(self.reader.readexactly)

    async def next_text(self) -> str:
        """The next text message, frames skipped."""
        while True:
            opcode, payload = await asyncio.wait_for(self.read_frame(), self.timeout_s)
            if opcode == OP_TEXT:
                return payload.decode()
            if opcode != OP_BINARY:
                raise ServerFrameError("unexpected opcode %d" % opcode)

    async def next_json(self, **wanted) -> dict:
        """The next JSON text message whose fields include `wanted` (heartbeats skipped)."""
        while True:
            text = await self.next_text()
            if text.startswith("{"):
                message = json.loads(text)
                if all(message.get(key) == value for key, value in wanted.items()):
                    return message

    async def close_frame(self) -> tuple[int, str] | None:
        """Read past data frames to the server's close frame: (code, reason), None if EOF first."""

        async def read() -> tuple[int, str] | None:
            try:
                while True:
                    opcode, payload = await self.read_frame()
                    if opcode == OP_CLOSE:
                        code = struct.unpack(">H", payload[:2])[0] if payload else CLOSE_NO_STATUS
                        return code, payload[2:].decode()
            except (asyncio.IncompleteReadError, ConnectionError):
                return None

        return await asyncio.wait_for(read(), self.timeout_s)

    async def wait_closed(self, timeout_s: float) -> float:
        """Seconds until the server ends the connection (EOF or reset); fails after `timeout_s`."""
        start = time.monotonic()

        self.transport.resume_reading()

        async def drain() -> None:
            with contextlib.suppress(ConnectionError):
                while await self.reader.read(65536):
                    pass

        await asyncio.wait_for(drain(), timeout_s)
        return time.monotonic() - start

    def stop_reading(self) -> None:
        """Leave everything the server sends in the kernel, as a stuck client does."""
        self.transport.pause_reading()

    def reset(self) -> None:
        """Drop the connection with a TCP reset, as a crashed client or a lost link would."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    def half_close(self) -> None:
        """Send a TCP FIN and keep reading (under TLS too, where write_eof() is refused)."""
        self.writer.get_extra_info("socket").shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.transport.abort()
