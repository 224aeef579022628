"""The Python client library: frames and messages from a dronecam server or the ESP32 (docs/client.md).

```python
async with StreamClient("ws://192.168.4.1/ws") as client:
    async for frame in client.frames():
        print(frame.seq, frame.latency_ms, len(frame.jpeg))
```
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    InvalidURI,
)

from .core import protocol
from .core.clock import ClockOffset, now_us
from .core.hub import RateMeter
from .core.telemetry import Telemetry, read_telemetry

log = logging.getLogger("dronecam.client")

EARLY_FRAMES = 4  # frames held at most while the first clock reply is on its way
# The largest message a client takes: the largest frame a server sends, with the tags of a
# few relays (MAX_FRAME_SIZE is only the device's; a host's limit follows its frame size).
MAX_RECEIVE_BYTES = protocol.MAX_FRAME_BYTES_CEILING + 4096


class StreamError(Exception):
    """The stream cannot go on: the message says why and what to do."""


_NOT_READ = object()


class ReceivedFrame:
    """One JPEG as received, with what its tag tells: seq, capture time, latency, gap, and
    the drone's state at its capture (`telemetry`, docs/protocol.md §5.3)."""

    __slots__ = ("_telemetry", "capture_us", "gap", "jpeg", "latency_ms", "received_us", "seq")

    def __init__(
        self,
        jpeg: bytes,
        seq: int,
        capture_us: int,
        received_us: int,
        latency_ms: float | None,
        gap: int,
    ) -> None:
        self.jpeg = jpeg
        self.seq = seq
        self.capture_us = capture_us
        self.received_us = received_us
        self.latency_ms = latency_ms
        self.gap = gap
        self._telemetry: Any = _NOT_READ

    @property
    def telemetry(self) -> Telemetry | None:
        """The drone's state when this frame was captured; None if the server heard no
        flight controller (or its telemetry is older than the server's limit)."""
        if self._telemetry is _NOT_READ:
            self._telemetry = read_telemetry(self.jpeg)
        result: Telemetry | None = self._telemetry
        return result

    def __repr__(self) -> str:
        latency = "?" if self.latency_ms is None else "%.1f ms" % self.latency_ms
        return "<ReceivedFrame seq=%d %d bytes latency=%s gap=%d>" % (
            self.seq,
            len(self.jpeg),
            latency,
            self.gap,
        )


class ServerMessage:
    """A JSON message from the server, or a local event: `disconnected`, `connected`."""

    __slots__ = ("data", "type")

    def __init__(self, data: dict[str, Any]) -> None:
        self.type = str(data.get("type", ""))
        self.data = data

    def __repr__(self) -> str:
        return "<ServerMessage %s>" % json.dumps(self.data)


class ClientStats:
    """Live figures of one client: fps, latency percentiles, throughput, gaps."""

    def __init__(self, latency_samples: int = 600) -> None:
        self.frames = 0
        self.dropped = 0
        self.bytes = 0
        self.reconnects = 0
        self.fps_meter = RateMeter()
        self.bytes_meter = RateMeter()
        self.latencies_ms: deque[float] = deque(maxlen=latency_samples)
        self.server: dict[str, Any] = {}
        self._last_frame: ReceivedFrame | None = None

    @property
    def telemetry(self) -> Telemetry | None:
        """The newest frame's telemetry (read when asked, not per frame)."""
        return None if self._last_frame is None else self._last_frame.telemetry

    def record(self, frame: ReceivedFrame) -> None:
        self._last_frame = frame
        self.frames += 1
        self.dropped += frame.gap
        self.bytes += len(frame.jpeg)
        self.fps_meter.tick()
        for _ in range(max(1, len(frame.jpeg) // 1024)):
            self.bytes_meter.tick()
        if frame.latency_ms is not None:
            self.latencies_ms.append(frame.latency_ms)

    @property
    def fps(self) -> float:
        return self.fps_meter.update()

    @property
    def kbytes_per_s(self) -> float:
        return self.bytes_meter.update()

    def latency_ms(self, percentile: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(percentile / 100 * len(ordered)))]


def stream_url(text: str) -> str:
    """The WebSocket URL for what a user typed, as the viewer page takes it: `192.168.4.1`,
    `localhost:8080`, `ws://host` (path `/ws` added), `http://host:8080/ws` (scheme changed).

    Raises:
        StreamError: `text` cannot be a stream URL; the message says what to type.
    """
    from urllib.parse import urlsplit, urlunsplit

    text = text.strip()
    if "://" not in text:
        text = "ws://" + text
    parts = urlsplit(text)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    hint = "; use ws://HOST:PORT/ws, e.g. ws://192.168.4.1/ws"
    if scheme not in ("ws", "wss") or not parts.hostname:
        raise StreamError("%s is not a WebSocket URL%s" % (text.split("?", 1)[0], hint))
    try:
        parts.port  # noqa: B018 (urlsplit checks the port only when it is read)
    except ValueError:
        raise StreamError(
            "%s: the port must be from 1 to 65535%s" % (text.split("?", 1)[0], hint)
        ) from None
    path = parts.path if parts.path not in ("", "/") else protocol.WS_PATH
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


class StreamClient:
    """A connection to a dronecam stream, iterated with `async for`.

    Args:
        url: `ws://HOST[:PORT]/ws` (the ESP32 is `ws://192.168.4.1/ws`); a bare `HOST[:PORT]`
            is taken as that (`stream_url`).
        window: credit flow (docs/protocol.md §3.4): at most this many frames in flight,
            acknowledged as the application takes them. None: no flow control, as the
            original clients behave.
        reconnect: reconnect with exponential backoff instead of ending the stream.
        receive_buffer_bytes: the socket's SO_RCVBUF (None: the system's autotuned size).
        max_frame_bytes: a larger message from the server ends the connection.

    Raises:
        StreamError: `url` cannot be a stream URL.
        ValueError: a window out of range.
    """

    def __init__(
        self,
        url: str,
        *,
        window: int | None = 2,
        reconnect: bool = False,
        backoff_min_s: float = 0.5,
        backoff_max_s: float = 10.0,
        open_timeout_s: float = 5.0,
        receive_buffer_bytes: int | None = None,
        max_frame_bytes: int = MAX_RECEIVE_BYTES,
    ) -> None:
        if window is not None and not 1 <= window <= protocol.MAX_WINDOW:
            raise ValueError("window must be from 1 to %d frames, or None" % protocol.MAX_WINDOW)
        self.url = stream_url(url)
        self.max_frame_bytes = max_frame_bytes
        self.window = window
        self.reconnect = reconnect
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self.open_timeout_s = open_timeout_s
        self.receive_buffer_bytes = receive_buffer_bytes
        self.stats = ClientStats()
        self.clock = ClockOffset()
        self.welcome: dict[str, Any] = {}
        self._ws: ClientConnection | None = None
        self._last_seq = 0
        self._acking = False
        self._replies: dict[str, asyncio.Future[Any]] = {}
        self._closed = False

    @property
    def shown_url(self) -> str:
        """The URL without its query, for messages: an access token must never be printed."""
        return self.url.split("?", 1)[0]

    @property
    def clock_offset_us(self) -> int | None:
        return self.clock.offset_us

    async def __aenter__(self) -> StreamClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the connection and ask for credit flow and the clock.

        Raises:
            StreamError: the server cannot be reached or refuses the handshake.
        """
        sock = None
        if self.receive_buffer_bytes:
            sock = _connected_socket(self.url, self.receive_buffer_bytes, self.open_timeout_s)
        try:
            self._ws = await websockets.connect(
                self.url,
                open_timeout=self.open_timeout_s,
                max_size=self.max_frame_bytes,
                compression=None,
                ping_interval=None,
                max_queue=4,
                # The server's close reply may wait behind frames this client stopped reading.
                close_timeout=2,
                sock=sock,
            )
        except InvalidURI as error:
            raise StreamError(
                "%s is not a WebSocket URL; use ws://HOST:PORT/ws" % self.shown_url
            ) from error
        except (InvalidHandshake, OSError, TimeoutError) as error:
            raise StreamError(self._refused(error)) from error
        self._last_seq = 0
        self._acking = False
        # Another server, or the same one restarted, has another clock: sample it afresh.
        self.clock = ClockOffset()
        try:
            if self.window:
                await self._ws.send("%s %d" % (protocol.WINDOW, self.window))
            self.clock.sent()
            await self._ws.send(protocol.CLOCK)
        except ConnectionClosed as error:  # refused right after the handshake: server full
            self._ws = None
            raise StreamError(_describe(error)) from error

    def _refused(self, error: Exception) -> str:
        """What to tell the user when the connection could not be opened, and what to do."""
        from urllib.parse import urlsplit

        url = self.shown_url
        tls = url.startswith("wss:")
        if isinstance(error, InvalidStatus):
            status = error.response.status_code
            if status == 401:
                if "token=" in self.url:
                    return "%s refused the access token (HTTP 401): check ?token=" % url
                return "%s needs an access token (HTTP 401): add ?token=TOKEN to the URL" % url
            if status == 404:
                parts = urlsplit(url)
                return "%s answered 404 Not Found: the stream is at %s://%s%s" % (
                    url,
                    parts.scheme,
                    parts.netloc,
                    protocol.WS_PATH,
                )
            if status == 403:
                return "%s refused this client (HTTP 403: origin not allowed)" % url
            said = bytes(error.response.body or b"").decode(errors="replace").strip()
            if status == 400 and not tls and "TLS" in said:
                return "%s answered that it is a TLS server: try wss://%s" % (url, url[5:])
            said = said.splitlines()[0][:120] if said else error.response.reason_phrase
            return "%s refused the WebSocket handshake (HTTP %d: %s)" % (url, status, said)
        if isinstance(error, ssl.SSLCertVerificationError):
            return (
                "%s: the server's TLS certificate is not trusted (%s); for a self-signed "
                "one, set SSL_CERT_FILE=cert.pem" % (url, error.verify_message)
            )
        if tls and isinstance(error, ssl.SSLError | ConnectionResetError | InvalidMessage):
            return "%s did not answer TLS: is it a plain server? try ws://%s" % (url, url[6:])
        if not tls and isinstance(error, InvalidMessage):
            return "%s did not answer in HTTP: is it a TLS server? try wss://%s" % (url, url[5:])
        if isinstance(error, InvalidHandshake):
            return "%s refused the WebSocket handshake: %s" % (url, error)
        if isinstance(error, TimeoutError):
            why = "no answer within %g s" % self.open_timeout_s
        else:
            why = getattr(error, "strerror", None) or str(error) or type(error).__name__
        return "cannot reach %s (%s); check the address and that you are on the drone's WiFi" % (
            url,
            why,
        )

    async def close(self) -> None:
        self._closed = True
        if self._ws is not None:
            await self._ws.close()

    def __aiter__(self) -> AsyncIterator[ReceivedFrame | ServerMessage]:
        return self._items()

    async def frames(self) -> AsyncIterator[ReceivedFrame]:
        """Only the frames; server messages still update `stats` and the clock."""
        async for item in self._items():
            if isinstance(item, ReceivedFrame):
                yield item

    async def _items(self) -> AsyncIterator[ReceivedFrame | ServerMessage]:
        backoff_s = self.backoff_min_s
        while not self._closed:
            try:
                if self._ws is None:
                    await self.connect()
                    if self.stats.frames:
                        self.stats.reconnects += 1
                    yield ServerMessage({"type": "connected", "url": self.shown_url})
                async for item in self._receive():
                    backoff_s = self.backoff_min_s
                    yield item
            except (ConnectionClosed, StreamError) as error:
                reason = _describe(error)
                self._fail_replies(reason)
                self._ws = None
                if not self.reconnect or self._closed:
                    if isinstance(error, ConnectionClosed) and _is_normal(error):
                        return
                    raise StreamError(reason) from error
                yield ServerMessage(
                    {"type": "disconnected", "reason": reason, "retry_in_s": backoff_s}
                )
                await asyncio.sleep(backoff_s)
                backoff_s = min(2 * backoff_s, self.backoff_max_s)

    async def _receive(self) -> AsyncIterator[ReceivedFrame | ServerMessage]:
        ws = self._ws
        assert ws is not None
        # Tagged frames that come before the first clock reply wait for it (one round trip,
        # once per connection), so the first frame has its latency too. A server that does
        # not answer `clock` (it replies with an error) only delays EARLY_FRAMES frames.
        early: list[tuple[bytes, int]] = []
        holding = self.clock.offset_us is None
        while True:
            message = await ws.recv()  # raises ConnectionClosed when the stream ends
            if isinstance(message, str):
                item = self._on_text(message)
                if item.type == "heartbeat" and self.clock.sent_us is None:
                    self.clock.sent()  # keep sampling: the lowest-delay round trip wins
                    await ws.send(protocol.CLOCK)
                yield item
                if holding and (self.clock.offset_us is not None or item.type == "error"):
                    holding = False
                    for data, received_us in early:
                        yield await self._take(ws, self._on_frame(data, received_us))
                    early.clear()
                continue
            received_us = now_us()
            if holding and len(early) < EARLY_FRAMES and protocol.read_tag(message) is not None:
                early.append((message, received_us))
                continue
            holding = False
            for data, early_us in early:
                yield await self._take(ws, self._on_frame(data, early_us))
            early.clear()
            yield await self._take(ws, self._on_frame(message, received_us))

    async def _take(self, ws: ClientConnection, frame: ReceivedFrame) -> ReceivedFrame:
        """The frame, acknowledged as it goes to the application (credit flow, §3.4)."""
        if self._acking:
            await ws.send(protocol.ACK)
        return frame

    def _on_frame(self, message: bytes, received_us: int) -> ReceivedFrame:
        tag = protocol.read_tag(message)
        if tag is None:  # an untagged server (another implementation): count it all the same
            seq, capture_us = self._last_seq + 1, 0
        else:
            seq, capture_us = tag
        gap = seq - self._last_seq - 1 if self._last_seq and seq > self._last_seq else 0
        self._last_seq = seq
        offset = self.clock.offset_us
        latency_ms = None
        if tag is not None and offset is not None:
            latency_ms = (received_us + offset - capture_us) / 1000
        frame = ReceivedFrame(message, seq, capture_us, received_us, latency_ms, gap)
        self.stats.record(frame)
        return frame

    def _on_text(self, text: str) -> ServerMessage:
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError
        except ValueError:
            data = {"type": text}  # "pong" is plain text in the contract
        message = ServerMessage(data)
        if message.type == "welcome":
            self.welcome = data
        elif message.type == "heartbeat":
            self.stats.server.update(data)
        elif message.type == "clock":
            self.clock.received(int(data.get("server_us", 0)))
        elif message.type == "window":
            self._acking = bool(data.get("window"))
        elif message.type == "stats":
            self.stats.server.update(data)
        reply = self._replies.pop(message.type, None)
        if reply is not None and not reply.done():
            reply.set_result(data)
        return message

    async def _request(self, command: str, reply_type: str, timeout_s: float) -> Any:
        if self._ws is None:
            raise StreamError("not connected")
        waiter = self._replies.setdefault(reply_type, asyncio.get_running_loop().create_future())
        await self._ws.send(command)
        return await asyncio.wait_for(asyncio.shield(waiter), timeout_s)

    def _fail_replies(self, reason: str) -> None:
        for waiter in self._replies.values():
            if not waiter.done():
                waiter.set_exception(StreamError(reason))
        self._replies.clear()

    async def get_stats(self, timeout_s: float = 5.0) -> dict[str, Any]:
        """The server's stats for this connection; the stream must be iterated meanwhile."""
        result: dict[str, Any] = await self._request(protocol.GET_STATS, "stats", timeout_s)
        return result

    async def ping(self, timeout_s: float = 5.0) -> float:
        """Round trip of `ping` -> `pong` in seconds; the stream must be iterated meanwhile."""
        start = time.perf_counter()
        await self._request(protocol.PING, protocol.PONG, timeout_s)
        return time.perf_counter() - start


def _connected_socket(url: str, receive_buffer_bytes: int, timeout_s: float) -> socket.socket:
    """A TCP socket with SO_RCVBUF set before connecting, so the window never grows past it."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer_bytes)
    sock.settimeout(timeout_s)
    try:
        sock.connect((parts.hostname or "127.0.0.1", port))
    except OSError as error:
        sock.close()
        raise StreamError("cannot reach %s (%s)" % (url.split("?", 1)[0], error)) from error
    sock.setblocking(False)
    return sock


def _is_normal(error: ConnectionClosed) -> bool:
    return error.rcvd is not None and error.rcvd.code in (
        protocol.CLOSE_NORMAL,
        protocol.CLOSE_GOING_AWAY,
    )


def _describe(error: Exception) -> str:
    """Why a stream ended, in words: a lost link, a full server, a close code and reason."""
    if isinstance(error, ConnectionClosed):
        close = error.rcvd
        if close is None:
            return "the connection was lost (no close from the server: link down or server gone)"
        if close.code == protocol.CLOSE_TRY_AGAIN_LATER:
            # The reason is "server full (N clients)"; say it once, and what to do.
            limit = close.reason.partition("(")[2].rstrip(")") or "its limit of clients"
            return (
                "server full: %s connected, its limit; try again later or raise the server's "
                "--max-clients" % limit
            )
        return "closed by the server: %d %s" % (close.code, close.reason)
    return str(error)


async def snapshot(url: str, timeout_s: float = 5.0) -> bytes:
    """One JPEG from the stream.

    Raises:
        StreamError: no frame within `timeout_s`, or the server cannot be reached.
    """

    async def first_frame() -> bytes:
        async with StreamClient(url, window=1) as client:
            async for frame in client.frames():
                return frame.jpeg
        raise StreamError("the stream ended before a frame arrived")

    try:
        return await asyncio.wait_for(first_frame(), timeout_s)
    except TimeoutError:
        raise StreamError(
            "no frame from %s within %.0f s: is the camera running?"
            % (url.split("?", 1)[0], timeout_s)
        ) from None


def iter_frames(url: str, **options: Any) -> Iterator[ReceivedFrame]:
    """Frames for code without asyncio: `for frame in iter_frames(url): ...`."""
    loop = asyncio.new_event_loop()
    client = StreamClient(url, **options)
    frames = client.frames()
    try:
        loop.run_until_complete(client.connect())
        while True:
            try:
                yield loop.run_until_complete(anext(frames))
            except StopAsyncIteration:
                return
    finally:
        loop.run_until_complete(client.close())
        loop.close()
