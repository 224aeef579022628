"""HTTP MJPEG (`GET /stream.mjpg`, multipart/x-mixed-replace) as an output (docs/mjpeg.md).

Each frame's multipart part (boundary, headers, tagged JPEG) is built once, by the first
client that takes it, and the same bytes are written to every HTTP client. A client whose
kernel buffer is full is paused by asyncio and skips to the newest frame when it drains,
exactly like a WebSocket connection; one that stays paused past the stream timeout is
dropped. HTTP clients share the server's client limit with WebSocket clients.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, cast

from websockets.http11 import Request

from ..core.hub import Frame, Subscription
from . import http

if TYPE_CHECKING:
    from ..core.hub import Hub
    from . import OutputServer

log = logging.getLogger("dronecam.server")

STREAM_PATH = "/stream.mjpg"
BOUNDARY = "dronecam"
STREAM_HEAD = http.response(
    200, "OK", [("Content-Type", "multipart/x-mixed-replace; boundary=%s" % BOUNDARY)]
).serialize()
STREAM_END = b"--%s--\r\n" % BOUNDARY.encode()


class PartCache:
    """The newest frame's multipart part, built once for all clients."""

    def __init__(self) -> None:
        self._frame: Frame | None = None
        self._part = b""
        self.built = 0

    def part(self, frame: Frame) -> bytes:
        if frame is not self._frame:
            jpeg = frame.jpeg()
            head = b"--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % (
                BOUNDARY.encode(),
                len(jpeg),
            )
            self._part = b"".join((head, jpeg, b"\r\n"))
            self._frame = frame
            self.built += 1
        return self._part


class MjpegOutput:
    """`/stream.mjpg` for the server: admits HTTP clients, holds the part they all write."""

    name = "mjpeg"

    def __init__(self) -> None:
        self.parts = PartCache()
        self.clients: set[MjpegClient] = set()
        self.routes: dict[str, http.Route] = {STREAM_PATH: self.serve}

    async def start(self, hub: Hub) -> None:
        """Nothing to start: each client subscribes itself when it connects."""

    async def stop(self) -> None:
        """Nothing to stop: the clients are the server's connections, closed with them."""

    def status(self) -> dict:
        return {"mjpeg_clients": len(self.clients)}

    def serve(self, connection: http.HttpExchange, request: Request) -> None:
        """Route handler: take the connection over as a stream, or answer 503 when full."""
        server = connection.server
        if server.status.is_full():
            limit = server.settings.max_clients
            log.warning("[VideoStreamServer] %s", server.status.refusal(connection.peer)[0])
            http.refuse(
                connection,
                503,
                "Server full: %d of %d clients connected, try again later\n" % (limit, limit),
            )
            return
        connection.hand_over(MjpegClient(self, server, connection.peer))


class MjpegClient(asyncio.Protocol):
    """One HTTP MJPEG client: its place at the hub and its write state (a ClientOutput)."""

    def __init__(self, output: MjpegOutput, server: OutputServer, peer: str) -> None:
        self.output = output
        self.server = server
        self.peer = peer
        self.transport: asyncio.Transport | None = None
        self.subscription: Subscription | None = None
        self.paused = False

    # asyncio.Protocol: the transport comes from the connection the request arrived on.
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)
        # Pause once anything is left over, resume once it is all in the kernel: (0, 0) means
        # that on a TCP transport, but asyncio's TLS transport pauses at `buffered >= high`,
        # so at 0 it would pause after every write and never resume.
        transport.set_write_buffer_limits(high=1, low=0)
        self.server.connections.add(self)
        self.output.clients.add(self)
        transport.write(STREAM_HEAD)
        self.subscription = self.server.hub.subscribe(self.on_frame)
        log.info(
            "[VideoStreamServer] MJPEG client %s connected, %d of %d",
            self.peer,
            len(self.server.hub.subscriptions),
            self.server.settings.max_clients,
        )
        self.on_frame()

    def data_received(self, data: bytes) -> None:
        """A streaming response reads nothing more: whatever comes is discarded."""

    def eof_received(self) -> bool | None:
        return None  # a half-closed client is done: close

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.on_frame()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.output.clients.discard(self)
        if self.subscription is not None:
            self.server.hub.unsubscribe(self.subscription)
            log.info(
                "[VideoStreamServer] MJPEG client %s disconnected (%d frames sent, %d dropped)",
                self.peer,
                self.subscription.frames_sent,
                self.subscription.frames_dropped,
            )
            self.subscription = None

    # The hub's callback: once per frame per client.
    def on_frame(self) -> None:
        if self.paused or self.subscription is None:
            return
        frame = self.subscription.take()
        if frame is not None:
            assert self.transport is not None
            self.transport.write(self.output.parts.part(frame))

    def write_framed(self, message: bytes) -> None:
        """WebSocket heartbeats are not for HTTP clients."""

    def check_timeouts(self, now_ms: int) -> None:
        status = self.server.status
        if self.subscription is not None and status.stream_timed_out(self.subscription, now_ms):
            log.info(
                "[VideoStreamServer] %s", status.stream_timeout_line("MJPEG client " + self.peer)
            )
            assert self.transport is not None
            self.transport.abort()

    def close(self, code: int, reason: str) -> None:
        """End the multipart stream if the client can still take it, else drop the socket."""
        transport = self.transport
        if transport is None:
            return
        if self.paused or transport.is_closing():
            transport.abort()
        else:
            transport.write(STREAM_END)
            self.paused = True  # nothing may follow the closing boundary
            transport.close()
