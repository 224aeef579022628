"""A small asyncio HTTP client for the HTTP outputs: one GET, or an MJPEG stream part by part.

Tests and benchmarks use it where a player (OpenCV, PyAV, Chromium) cannot say what they need
to know: status lines, headers, the bytes of each part, or a reader that is slow on purpose.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from urllib.parse import urlsplit

MAX_HEAD_BYTES = 64 * 1024


class HttpAnswer:
    """A response's status, headers (lower-case names) and, for a whole response, body."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        self.status = status
        self.headers = headers
        self.body = body


def _parse_head(head: bytes) -> HttpAnswer:
    lines = head.decode("iso-8859-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return HttpAnswer(status, headers)


async def _connect(
    url: str, context: ssl.SSLContext | None, receive_buffer_bytes: int | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer_bytes:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer_bytes)
    sock.setblocking(False)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    await asyncio.get_running_loop().sock_connect(sock, (parts.hostname, port))
    server_hostname = parts.hostname if context is not None else None
    # The reader buffers up to twice its limit before it stops reading the socket: a slow
    # reader must keep that small, or the server never sees it fall behind.
    limit = min(receive_buffer_bytes, MAX_HEAD_BYTES) if receive_buffer_bytes else MAX_HEAD_BYTES
    reader, writer = await asyncio.open_connection(
        sock=sock, ssl=context, server_hostname=server_hostname, limit=limit
    )
    path = parts.path + ("?" + parts.query if parts.query else "")
    writer.write(b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path.encode(), parts.netloc.encode()))
    return reader, writer


async def http_get(url: str, context: ssl.SSLContext | None = None) -> HttpAnswer:
    """One GET; the server closes the connection after its answer."""
    reader, writer = await _connect(url, context, None)
    try:
        answer = _parse_head(await reader.readuntil(b"\r\n\r\n"))
        answer.body = await reader.read()
        return answer
    finally:
        writer.close()


class MjpegStream:
    """An open `multipart/x-mixed-replace` response, read one JPEG at a time."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer: HttpAnswer
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.status = answer.status
        self.headers = answer.headers

    @classmethod
    async def open(
        cls,
        url: str,
        context: ssl.SSLContext | None = None,
        receive_buffer_bytes: int | None = None,
    ) -> MjpegStream:
        reader, writer = await _connect(url, context, receive_buffer_bytes)
        answer = _parse_head(await reader.readuntil(b"\r\n\r\n"))
        return cls(reader, writer, answer)

    async def next_jpeg(self) -> bytes:
        """The next part's body; IncompleteReadError when the stream ends."""
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = None
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        if length is None:
            raise ValueError("a multipart part without Content-Length: %r" % head[:200])
        jpeg = await self.reader.readexactly(length)
        await self.reader.readexactly(2)  # the CRLF before the next boundary
        return jpeg

    def close(self) -> None:
        self.writer.close()
