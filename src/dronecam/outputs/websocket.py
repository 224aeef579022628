"""A WebSocket client as an output: websockets' sans-I/O handshake and parser, frames written
straight to the transport (docs/architecture.md §Host server).

Every frame is framed once by the hub; a connection that can write takes the newest frame and
hands the same bytes to its transport. A connection whose kernel buffer is full is paused by
asyncio (`pause_writing`) and skips to the newest frame when it drains (`resume_writing`):
at most one partly written frame waits in user space per client. Under TLS the same bytes are
encrypted on the way (outputs/tls.py) and written to the same TCP transport.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import socket
import ssl
from typing import TYPE_CHECKING, cast
from urllib.parse import parse_qs, urlsplit

from websockets.datastructures import Headers
from websockets.exceptions import InvalidMessage, InvalidOrigin
from websockets.frames import Frame as WebSocketFrame
from websockets.frames import Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.typing import Origin

from ..core import protocol
from ..core.compat import ticks_diff, ticks_ms
from ..core.hub import Subscription
from ..core.protocol import ProtocolError
from .http import routes_of
from .tls import TlsTransport

if TYPE_CHECKING:
    from . import OutputServer

log = logging.getLogger("dronecam.server")

MAX_PENDING_REPLY_BYTES = 256 * 1024
# The 4 KB message limit bounds a message's bytes; this bounds its frames (empty continuation
# frames cost the parser as much as full ones), and the handshake timeout bounds its time.
MAX_FRAGMENTS = 64
# What websockets parses in one go: a flood of tiny frames is cut off after a slice, not
# after the 256 KB asyncio may hand over at once, and other clients wait no longer for it.
READ_SLICE_BYTES = 1024
# How long a client has to answer our close frame (or to read it) before its socket is dropped.
CLOSE_TIMEOUT_MS = 2000


class Connection(asyncio.Protocol):
    """One client: its WebSocket state machine, its place at the hub and its write state."""

    def __init__(self, server: OutputServer) -> None:
        self.server = server
        settings = server.settings
        # No Origin header means a non-browser client, which cross-site hijacking cannot be.
        origins = [Origin(origin) for origin in settings.origins] if settings.origins else None
        self.ws = ServerProtocol(
            origins=[*origins, None] if origins else None,
            max_size=settings.max_message_bytes,
            logger=logging.getLogger("dronecam.websocket"),
        )
        # The TCP transport, or under TLS that transport seen through the session.
        self.transport: asyncio.Transport | None = None
        self.tls: TlsTransport | None = None
        self.subscription: Subscription | None = None
        # The camera this client watches: the server's own, or one of a NATS edge's (?camera=).
        self.status = server.status
        self.peer = "?"
        self.opened_ms = ticks_ms()
        self.paused = False
        self.closing_since_ms: int | None = None
        self._fragments: list[bytes] = []
        self._message_frames = 0  # frames of the fragmented message under way
        self._message_started_ms = 0
        self._frames_this_tick = 0  # client frames since the last check_timeouts
        self._answered_bad_request = False

    # asyncio.Protocol: the I/O edge.
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport has the Transport interface without subclassing it.
        self.transport = transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = "%s:%s" % peer[:2] if peer else "?"
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.setsockopt(
                    socket.SOL_SOCKET, socket.SO_SNDBUF, self.server.settings.send_buffer_bytes
                )
            except OSError:  # reset by the peer already: connection_lost follows
                pass
        # Pause as soon as anything is left over, resume only once all of it is in the kernel.
        transport.set_write_buffer_limits(high=0, low=0)
        context = self.server.settings.ssl_context
        if context is not None:
            self.transport = self.tls = TlsTransport(transport, context)
        self.server.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self.tls is not None:
            if not self.tls.session.handshake_done and data.startswith(b"GET "):
                self._refuse_plain_http()
                return
            try:
                data = self.tls.receive(data)
            except ssl.SSLError as error:
                log.debug("[VideoStreamServer] dropping %s: TLS: %s", self.peer, error)
                self.tls.abort()
                return
            if not data:
                return
        if len(data) <= READ_SLICE_BYTES:
            self.ws.receive_data(data)
            self._handle_events()
            return
        for start in range(0, len(data), READ_SLICE_BYTES):
            # After a close or a failure websockets only discards: the rest costs little.
            self.ws.receive_data(data[start : start + READ_SLICE_BYTES])
            self._handle_events()

    def _refuse_plain_http(self) -> None:
        """A ws:// client at a wss:// server: one line saying so, in plain HTTP it can read."""
        assert self.tls is not None
        body = b"This server speaks TLS: use wss://\n"
        self.tls.tcp.write(
            b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )
        self.tls.tcp.close()

    def eof_received(self) -> bool | None:
        self.ws.receive_eof()
        self._handle_events()
        return None

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.on_frame()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self._leave_hub()

    def _leave_hub(self) -> None:
        """Give up the client's slot: at the close handshake, not when its socket goes."""
        if self.subscription is not None:
            self.subscription.hub.unsubscribe(self.subscription)
            line = self.status.disconnected_line(self.peer, self.subscription)
            log.info("[VideoStreamServer] %s", line)
            self.subscription = None

    # The hub's callback: the hot path, once per frame per client.
    def on_frame(self) -> None:
        # Nothing may follow a close frame (RFC 6455 §5.5.1), even while the socket drains.
        if self.paused or self.subscription is None or self.ws.state is not State.OPEN:
            return
        frame = self.subscription.take()
        if frame is not None:
            assert self.transport is not None
            self.transport.write(frame.message)

    # WebSocket events.
    def _handle_events(self) -> None:
        for event in self.ws.events_received():
            if isinstance(event, Request):
                self._handle_request(event)
            elif isinstance(event, WebSocketFrame):
                self._handle_frame(event)
        if self.ws.state is State.CONNECTING and isinstance(self.ws.handshake_exc, InvalidMessage):
            self._answer_bad_request(self.ws.handshake_exc)
        self._flush()

    def _answer_bad_request(self, error: InvalidMessage) -> None:
        """websockets drops a request it cannot parse without a word: say why, in one line."""
        if self._answered_bad_request:
            return
        self._answered_bad_request = True
        reason = bad_request_reason(error)
        if reason is None or self.transport is None:
            return  # the client went in the middle of its request: nobody to tell
        log.info("[VideoStreamServer] refused %s: bad request (%s)", self.peer, reason)
        response = self.ws.reject(400, "Bad request: %s\n" % reason)
        self.transport.write(response.serialize())

    def _handle_request(self, request: Request) -> None:
        server = self.server
        url = urlsplit(request.path)
        if len(request.headers.get_all("Host")) != 1:
            # RFC 9112 §3.2: exactly one Host header, or 400; websockets leaves it to us.
            self.ws.send_response(self.ws.reject(400, "Bad request: one Host header needed\n"))
            return
        routes = routes_of(server.outputs)
        route = routes.get(url.path)
        if url.path != protocol.WS_PATH and route is None:
            if url.path == "/" and server.settings.viewer_html and "Upgrade" not in request.headers:
                self.ws.send_response(_viewer_response(server.settings.viewer_html))
            else:
                missing = self.ws.reject(404, _not_found_text(sorted(routes)))
                missing.headers["Access-Control-Allow-Origin"] = "*"  # for the viewer: see 401
                self.ws.send_response(missing)
            return
        if server.settings.token is not None and not _token_matches(
            url.query, server.settings.token
        ):
            log.warning("[VideoStreamServer] refused %s: missing or wrong access token", self.peer)
            refusal = self.ws.reject(401, "Missing or wrong access token (?token=...)\n")
            # The viewer page, opened from disk, asks over HTTP why its WebSocket was refused
            # (browsers hide the handshake's status): let it read this status, nothing more.
            refusal.headers["Access-Control-Allow-Origin"] = "*"
            self.ws.send_response(refusal)
            return
        if route is not None:
            route(self, request)
            return
        camera = parse_qs(url.query).get("camera", [None])[0]
        status = server.status_for(camera)
        if status is None:
            self.ws.send_response(self.ws.reject(404, server.no_camera_text(camera)))
            return
        self.status = status
        response = self.ws.accept(request)
        self.ws.send_response(response)
        if response.status_code != 101:
            if isinstance(self.ws.handshake_exc, InvalidOrigin):
                log.warning("[VideoStreamServer] refused %s: origin not allowed", self.peer)
            return
        if status.is_full():
            line, error, code, reason = status.refusal(self.peer)
            log.warning("[VideoStreamServer] %s", line)
            self.send_text(error)
            self.ws.send_close(code, reason)
            return
        self.subscription = status.hub.subscribe(self.on_frame)
        log.info("[VideoStreamServer] %s", status.connected_line(self.peer))
        self.send_text(status.welcome_message())
        self.on_frame()

    def hand_over(self, output: asyncio.Protocol) -> None:
        """Give the transport to another output (an HTTP stream): this connection is done."""
        transport = self.transport
        assert transport is not None
        self.server.connections.discard(self)
        self.transport = None
        transport.set_protocol(output)
        output.connection_made(transport)

    def _handle_frame(self, event: WebSocketFrame) -> None:
        if self.ws.state is not State.OPEN:
            return  # parsed in the same slice as a frame that closed the connection
        self._frames_this_tick += 1
        if self._frames_this_tick > self._frame_budget():
            limit = self.server.settings.max_client_messages_per_s
            log.warning(
                "[VideoStreamServer] closing %s: more than %d messages a second", self.peer, limit
            )
            self.ws.fail(protocol.CLOSE_POLICY_VIOLATION, "more than %d messages a second" % limit)
            return
        if event.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            if not self._count_fragment(event):
                return
        if event.opcode is Opcode.TEXT or (event.opcode is Opcode.CONT and self._fragments):
            self._fragments.append(bytes(event.data))
            if event.fin:
                data = b"".join(self._fragments)
                self._fragments.clear()
                try:
                    text = data.decode()
                except UnicodeDecodeError:
                    # websockets' sans-I/O layer leaves UTF-8 checks to the I/O layer (RFC 6455 §8.1).
                    self.ws.fail(protocol.CLOSE_INVALID_DATA, "invalid UTF-8 in a text message")
                    return
                self._handle_command(text)
        elif event.opcode is Opcode.BINARY or event.opcode is Opcode.CONT:
            if event.fin:
                error = ProtocolError("binary_not_supported", "send commands as text messages")
                self.send_text(error.reply)

    def _frame_budget(self) -> int:
        """Client frames (data and control) allowed between two checks of the timeouts.

        At least a message's worth of fragments, and room for a burst of queued acks.
        """
        settings = self.server.settings
        per_tick = settings.max_client_messages_per_s * settings.heartbeat_interval_ms // 1000
        return max(2 * MAX_FRAGMENTS, per_tick)

    def _count_fragment(self, event: WebSocketFrame) -> bool:
        """Count a data frame of a fragmented message; False if that broke the limit."""
        if event.opcode is not Opcode.CONT:
            self._message_frames = 0
            self._message_started_ms = ticks_ms() if not event.fin else 0
        self._message_frames += 1
        if event.fin:
            self._message_frames = 0
            self._message_started_ms = 0
        elif self._message_frames > MAX_FRAGMENTS:
            self._fragments.clear()
            self.ws.fail(
                protocol.CLOSE_TOO_BIG, "message in more than %d fragments" % MAX_FRAGMENTS
            )
            return False
        return True

    def _handle_command(self, text: str) -> None:
        subscription = self.subscription
        if subscription is None:
            return
        reply, credit_changed = self.status.answer(text, subscription)
        if reply is not None:
            self.send_text(reply)
        if credit_changed:
            self.on_frame()

    # Writing.
    def send_text(self, text: str) -> None:
        if self.ws.state is State.OPEN:
            self.ws.send_text(text.encode())
            self._flush()

    def write_framed(self, message: bytes) -> None:
        """Write a server message framed once for all clients (heartbeats)."""
        if self.ws.state is State.OPEN and self.subscription is not None and self.transport:
            self.transport.write(message)

    def _flush(self) -> None:
        transport = self.transport
        if self.closing_since_ms is None and self.ws.state in (State.CLOSING, State.CLOSED):
            self.closing_since_ms = ticks_ms()  # from now on it has CLOSE_TIMEOUT_MS to go
            self._leave_hub()
        if transport is None or transport.is_closing():
            return
        for chunk in self.ws.data_to_send():
            if chunk:
                transport.write(chunk)
            elif transport.can_write_eof():
                # Half-close and read on until the client closes (or CLOSE_TIMEOUT_MS): a full
                # close with its data unread would reset the connection, and a client still
                # sending would lose our close frame, the reason with it.
                transport.write_eof()
                return
            else:
                transport.close()
                return
        if transport.get_write_buffer_size() > MAX_PENDING_REPLY_BYTES:
            log.warning(
                "[VideoStreamServer] closing %s: it sends commands but reads no replies", self.peer
            )
            transport.abort()

    def close(self, code: int, reason: str) -> None:
        """Close with a close frame if the client can still take one, else drop the socket.

        A transport already closing may wait forever on a client that never reads: abort it.
        """
        if self.transport is None:
            return
        if self.paused or self.ws.state is not State.OPEN or self.transport.is_closing():
            self.transport.abort()
        else:
            self.ws.send_close(code, reason)
            self._flush()

    def check_timeouts(self, now_ms: int) -> None:
        settings = self.server.settings
        self._frames_this_tick = 0
        if self.closing_since_ms is not None:
            # A refused or closed client that never answers the close frame, or never reads
            # it, would otherwise keep its socket for as long as it likes.
            if ticks_diff(now_ms, self.closing_since_ms) > CLOSE_TIMEOUT_MS:
                log.info(
                    "[VideoStreamServer] dropping %s: no answer to the close within %d ms",
                    self.peer,
                    CLOSE_TIMEOUT_MS,
                )
                assert self.transport is not None
                self.transport.abort()
            return
        if self.ws.state is State.CONNECTING:
            if ticks_diff(now_ms, self.opened_ms) > settings.handshake_timeout_ms:
                log.info(
                    "[VideoStreamServer] closing %s: no handshake within %d ms",
                    self.peer,
                    settings.handshake_timeout_ms,
                )
                assert self.transport is not None
                self.transport.abort()
            return
        if self._message_started_ms and (
            ticks_diff(now_ms, self._message_started_ms) > settings.handshake_timeout_ms
        ):
            reason = "message not finished within %d ms" % settings.handshake_timeout_ms
            log.info("[VideoStreamServer] closing %s: %s", self.peer, reason)
            self._message_started_ms = 0
            self._fragments.clear()
            self.ws.fail(protocol.CLOSE_POLICY_VIOLATION, reason)
            self._flush()
            return
        status = self.status
        if self.subscription is not None and status.stream_timed_out(self.subscription, now_ms):
            log.info("[VideoStreamServer] %s", status.stream_timeout_line(self.peer))
            self.close(protocol.CLOSE_POLICY_VIOLATION, "stream timeout")


def bad_request_reason(error: BaseException) -> str | None:
    """A short reason for a request websockets could not parse, None if it was cut short."""
    messages = []
    cause: BaseException | None = error.__cause__
    while cause is not None:
        messages.append(str(cause))
        cause = cause.__cause__ or (None if cause.__suppress_context__ else cause.__context__)
    if any("without CRLF" in message for message in messages):
        return "lines must end with CRLF"
    if not messages or messages[-1].startswith("stream ends after"):
        return None
    reason = messages[-1]
    if reason.startswith("connection closed while"):
        return None
    reason = "".join(c if " " <= c <= "~" else "?" for c in reason)
    return reason if len(reason) <= 100 else reason[:97] + "..."


def _token_matches(query: str, token: str) -> bool:
    offered = parse_qs(query).get("token", [""])[0]
    return hmac.compare_digest(offered.encode(), token.encode())


def _not_found_text(paths: list[str]) -> str:
    if not paths:
        return "Not found. dronecam serves only a WebSocket at %s\n" % protocol.WS_PATH
    return "Not found. dronecam serves a WebSocket at %s and %s\n" % (
        protocol.WS_PATH,
        ", ".join(paths),
    )


def _viewer_response(html: bytes) -> Response:
    headers = Headers(
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(html))),
            ("Cache-Control", "no-cache"),
            ("Connection", "close"),
        ]
    )
    return Response(200, "OK", headers, html)
