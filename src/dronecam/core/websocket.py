"""The RFC 6455 subset dronecam's servers speak, sans I/O (docs/protocol.md §4).

Servers send unmasked frames, so one header serves every client: a frame is framed once
and the same bytes are written to each connection. The handshake checks and the client
frame reader are what the firmware needs; the host server uses `websockets` for those.
"""

import binascii
import hashlib
import struct

from .compat import const
from .protocol import (
    CLOSE_INVALID_DATA,
    CLOSE_NO_STATUS,
    CLOSE_PROTOCOL_ERROR,
    CLOSE_TOO_BIG,
)

OP_CONTINUATION = const(0x0)
OP_TEXT = const(0x1)
OP_BINARY = const(0x2)
OP_CLOSE = const(0x8)
OP_PING = const(0x9)
OP_PONG = const(0xA)

MAX_HEADER_SIZE = const(10)  # server frames are never masked


def frame_header_size(payload_bytes: int) -> int:
    if payload_bytes < 126:
        return 2
    if payload_bytes < 65536:
        return 4
    return 10


def write_frame_header(buffer, offset: int, opcode: int, payload_bytes: int) -> int:
    """Write a final, unmasked frame header into `buffer`; return the header's size (RFC 6455 §5.2)."""
    first = 0x80 | opcode
    if payload_bytes < 126:
        struct.pack_into(">BB", buffer, offset, first, payload_bytes)
        return 2
    if payload_bytes < 65536:
        struct.pack_into(">BBH", buffer, offset, first, 126, payload_bytes)
        return 4
    struct.pack_into(">BBQ", buffer, offset, first, 127, payload_bytes)
    return 10


def frame_header(opcode: int, payload_bytes: int) -> bytes:
    header = bytearray(frame_header_size(payload_bytes))
    write_frame_header(header, 0, opcode, payload_bytes)
    return bytes(header)


def frame(opcode: int, payload) -> bytes:
    """A whole server frame: header and payload."""
    return frame_header(opcode, len(payload)) + bytes(payload)


def close_payload(code: int, reason: str = "") -> bytes:
    """The body of a close frame: the code, then a UTF-8 reason cut to fit 125 bytes (§5.5.1)."""
    data = reason.encode()
    end = min(len(data), 123)
    while end < len(data) and data[end] & 0xC0 == 0x80:  # never cut a character in two
        end -= 1
    return struct.pack(">H", code) + data[:end]


class WebSocketError(Exception):
    """A client broke RFC 6455: the I/O layer closes with `code` (docs/protocol.md §4)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


# The opening handshake (RFC 6455 §4.2): a GET to /ws with Upgrade headers, answered by 101;
# anything else gets a short non-200 answer (docs/protocol.md §1: no HTTP interface).
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_REQUEST_BYTES = const(4096)
MAX_HEADERS = const(32)


class HandshakeError(Exception):
    """A request that is not a WebSocket upgrade to our path; `response` is the HTTP answer."""

    def __init__(self, status: int, message: str, extra_headers: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.response = http_response(status, message + "\n", extra_headers)


_REASONS = {
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    426: "Upgrade Required",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


def http_response(status: int, text: str, extra_headers: str = "") -> bytes:
    """A short plain-text HTTP answer that closes the connection: no pages here (§1)."""
    body = text.encode()
    head = "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%sConnection: close\r\n\r\n"
    return (
        head % (status, _REASONS.get(status, "Error"), len(body), extra_headers)
    ).encode() + body


def request_end(buffer, length: int) -> int:
    """The size of the request head in buffer[:length] (up to the blank line), or 0 if incomplete.

    Bytes that cannot begin an HTTP/1.1 request are refused as soon as they arrive, not after
    the handshake timeout: a TLS ClientHello, a bare LF, a request line of another version.

    Raises:
        HandshakeError: 400 for those, 431 when the head does not fit in MAX_REQUEST_BYTES.
    """
    data = bytes(memoryview(buffer)[:length])
    end = data.find(b"\r\n\r\n")
    _check_request_start(data if end < 0 else data[: end + 2])
    if end >= 0:
        return end + 4
    if length >= MAX_REQUEST_BYTES:
        raise HandshakeError(431, "request head over %d bytes" % MAX_REQUEST_BYTES)
    return 0


def _check_request_start(head: bytes) -> None:
    if not head:
        return
    if head[0] == 0x16:  # the first byte of a TLS record: a wss:// client
        raise HandshakeError(400, "this is a plain ws:// server, not TLS: connect with ws://")
    if not 0x41 <= head[0] <= 0x5A:  # methods are upper-case tokens (RFC 9110 §9)
        raise HandshakeError(400, "not an HTTP request")
    if head.count(b"\n") != head.count(b"\r\n"):
        raise HandshakeError(400, "lines must end with CRLF, not a bare LF")
    line_end = head.find(b"\r\n")
    if line_end >= 0 and not head[:line_end].endswith(b" HTTP/1.1"):
        raise HandshakeError(400, "a WebSocket upgrade needs HTTP/1.1")


def parse_request(head, path: str) -> str:
    """Check an HTTP request head for a WebSocket upgrade to `path`; return Sec-WebSocket-Accept.

    Raises:
        HandshakeError: with the 400, 404, 405 or 426 answer to send before closing.
    """
    try:
        lines = bytes(head).decode().split("\r\n")
    except UnicodeError:
        raise HandshakeError(400, "request head is not UTF-8") from None
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise HandshakeError(400, "malformed request line")
    if parts[2] != "HTTP/1.1":
        raise HandshakeError(400, "a WebSocket upgrade needs HTTP/1.1")
    headers: dict = {}
    for line in lines[1:]:
        if not line:
            break
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip() or len(headers) >= MAX_HEADERS:
            raise HandshakeError(400, "malformed or too many header lines")
        headers[name.lower()] = value.strip()
    if parts[1].split("?")[0] != path:
        raise HandshakeError(404, "Not found. This device serves only a WebSocket at %s" % path)
    if parts[0] != "GET":
        raise HandshakeError(405, "only GET upgrades to a WebSocket", "Allow: GET\r\n")
    upgrade = "websocket" in headers.get("upgrade", "").lower()
    tokens = [t.strip() for t in headers.get("connection", "").lower().split(",")]
    if not upgrade or "upgrade" not in tokens:
        raise HandshakeError(426, "connect with a WebSocket client", "Upgrade: websocket\r\n")
    if headers.get("sec-websocket-version") != "13":
        raise HandshakeError(426, "WebSocket version 13 only", "Sec-WebSocket-Version: 13\r\n")
    key = headers.get("sec-websocket-key", "")
    try:
        valid_key = len(binascii.a2b_base64(key)) == 16
    except ValueError:  # binascii.Error is a ValueError on both interpreters
        valid_key = False
    if not valid_key or "host" not in headers:
        raise HandshakeError(400, "missing Host or bad Sec-WebSocket-Key")
    if headers.get("content-length", "0") != "0" or "transfer-encoding" in headers:
        raise HandshakeError(400, "an upgrade request has no body")
    return accept_key(key)


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (RFC 6455 §4.2.2)."""
    digest = hashlib.sha1(key.encode() + GUID).digest()
    return binascii.b2a_base64(digest).decode().strip()


def accept_response(accept: str) -> bytes:
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: %s\r\n\r\n" % accept
    ).encode()


# Client frames (RFC 6455 §5, docs/protocol.md §4): always masked; messages may be fragmented.
_CONTROL_MAX = const(125)
MAX_CLIENT_HEADER_SIZE = const(14)  # client frames are always masked
# Empty continuations add no bytes: without a count, one message could stay open forever.
MAX_FRAGMENTS = const(64)


class MessageReader:
    """Turns a client's bytes into messages and control frames, within fixed buffers.

    The I/O layer reads into `space()`, calls `received(n)`, then takes `next_event()` until
    None. Events are (OP_TEXT, str), (OP_BINARY, bytes), (OP_PING, bytes), (OP_PONG, bytes)
    and (OP_CLOSE, (code, reason)). Every violation raises WebSocketError with its close code.
    """

    def __init__(self, max_message_bytes: int = 4096, buffer=None) -> None:
        """`buffer`: a bytearray of at least max_message_bytes + MAX_CLIENT_HEADER_SIZE to read
        frames into (the firmware passes the one its handshake was read into), else a new one.
        """
        self.max_message_bytes = max_message_bytes
        if buffer is None:  # one whole frame, header included
            buffer = bytearray(max_message_bytes + MAX_CLIENT_HEADER_SIZE)
        self._buffer = buffer
        self._length = 0
        self._message = bytearray(max_message_bytes)
        self._message_bytes = 0
        self._message_opcode = -1  # opcode of the fragmented message under way, or -1
        self._fragments = 0  # frames of it so far
        self._payload_offset = 0

    def space(self) -> memoryview:
        return memoryview(self._buffer)[self._length :]

    def received(self, nbytes: int) -> None:
        self._length += nbytes

    def in_message(self) -> bool:
        """True between the first and the last fragment of a message (the I/O layer times it)."""
        return self._message_opcode >= 0

    def discard(self) -> memoryview:
        """Forget everything buffered (after a WebSocketError, to drain the client): space()."""
        self._length = self._message_bytes = self._fragments = 0
        self._message_opcode = -1
        return self.space()

    def receive_data(self, data) -> list:
        """Feed any amount of bytes; return the events they complete (tests and fuzzing)."""
        events = []
        view = memoryview(data)
        while True:
            event = self.next_event()
            while event is not None:
                events.append(event)
                event = self.next_event()
            if not len(view):
                return events
            room = self.space()
            count = min(len(room), len(view))
            room[:count] = view[:count]
            self.received(count)
            view = view[count:]

    def next_event(self):
        """The next complete event in the buffer, or None until more bytes arrive."""
        while True:
            end = self._frame_end()
            if not end:
                return None
            event = self._parse(end)
            rest = self._length - end
            if rest:  # keep the next frame's first bytes at the start of the buffer
                view = memoryview(self._buffer)
                view[:rest] = view[end : self._length]
            self._length = rest
            if event is not None:
                return event

    def _frame_end(self) -> int:
        """The size of the first frame if all of it is here, else 0; checks its header."""
        buffer, length = self._buffer, self._length
        if length < 2:
            return 0
        first, second = buffer[0], buffer[1]
        if first & 0x70:
            raise WebSocketError(CLOSE_PROTOCOL_ERROR, "reserved bits set without an extension")
        if not second & 0x80:
            raise WebSocketError(CLOSE_PROTOCOL_ERROR, "client frames must be masked")
        opcode, size, offset = first & 0x0F, second & 0x7F, 2
        if size == 126:
            if length < 4:
                return 0
            size, offset = struct.unpack_from(">H", buffer, 2)[0], 4
        elif size == 127:
            if length < 10:
                return 0
            size, offset = struct.unpack_from(">Q", buffer, 2)[0], 10
        if opcode not in (OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG):
            raise WebSocketError(CLOSE_PROTOCOL_ERROR, "unknown opcode %d" % opcode)
        if opcode & 0x8:
            if size > _CONTROL_MAX or not first & 0x80:
                raise WebSocketError(
                    CLOSE_PROTOCOL_ERROR, "control frames are short and never fragmented"
                )
        elif self._message_bytes + size > self.max_message_bytes:
            raise WebSocketError(
                CLOSE_TOO_BIG, "messages are at most %d bytes" % self.max_message_bytes
            )
        elif self._fragments >= MAX_FRAGMENTS:
            raise WebSocketError(CLOSE_TOO_BIG, "message in more than %d fragments" % MAX_FRAGMENTS)
        end = offset + 4 + size
        self._payload_offset = offset + 4
        return end if length >= end else 0

    def _parse(self, end: int):
        buffer, start = self._buffer, self._payload_offset
        opcode, size = buffer[0] & 0x0F, end - start
        payload = memoryview(buffer)[start:end]
        _unmask(payload, buffer[start - 4 : start], size)
        if opcode & 0x8:
            return self._control(opcode, bytes(payload))
        if opcode == OP_CONTINUATION:
            if self._message_opcode < 0:
                raise WebSocketError(CLOSE_PROTOCOL_ERROR, "continuation frame without a message")
            opcode = self._message_opcode
        elif self._message_opcode >= 0:
            raise WebSocketError(CLOSE_PROTOCOL_ERROR, "new message inside a fragmented one")
        if not buffer[0] & 0x80 or buffer[0] & 0x0F == OP_CONTINUATION:  # gather the fragments
            total = self._message_bytes + size
            memoryview(self._message)[self._message_bytes : total] = payload
            self._message_bytes = total
            self._fragments += 1
            if not buffer[0] & 0x80:
                self._message_opcode = opcode
                return None
            payload = memoryview(self._message)[:total]
            self._message_opcode, self._message_bytes, self._fragments = -1, 0, 0
        return (OP_TEXT, _text(payload)) if opcode == OP_TEXT else (OP_BINARY, bytes(payload))

    def _control(self, opcode: int, data: bytes):
        if opcode != OP_CLOSE:
            return opcode, data
        if len(data) == 1:
            raise WebSocketError(CLOSE_PROTOCOL_ERROR, "close frame with a 1-byte body")
        if not data:
            return OP_CLOSE, (CLOSE_NO_STATUS, "")
        code = struct.unpack(">H", data[:2])[0]
        if not (1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999):
            raise WebSocketError(CLOSE_PROTOCOL_ERROR, "invalid close code %d" % code)
        return OP_CLOSE, (code, _text(data[2:]))


def _unmask(view, mask, size: int) -> None:
    # One XOR of two big integers: no per-byte Python loop, and bounded by the message limit.
    if size:
        key = (bytes(mask) * ((size + 3) // 4))[:size]
        value = int.from_bytes(view, "big") ^ int.from_bytes(key, "big")
        view[:] = value.to_bytes(size, "big")


def _text(data) -> str:
    try:
        return bytes(data).decode()
    except UnicodeError:
        raise WebSocketError(CLOSE_INVALID_DATA, "text is not valid UTF-8") from None
