"""The wire contract of docs/protocol.md: limits, JSON messages, commands and the frame tag.

Pure functions only, in the subset of Python that CPython and MicroPython share: the host
server, the firmware and the clients all import this one file.
"""

import json
import struct

from .compat import const

PROTOCOL_VERSION = const(1)

# §1 Endpoint and limits (the original's StreamConfig, same names and defaults).
WS_PATH = "/ws"
MAX_CLIENTS = const(5)
MAX_FRAME_SIZE = const(100000)
STREAM_TIMEOUT_MS = const(5000)
HEARTBEAT_INTERVAL_MS = const(1000)
HANDSHAKE_TIMEOUT_MS = const(5000)
MAX_CLIENT_MESSAGE_BYTES = const(4096)
MAX_WINDOW = const(64)

WELCOME_FORMAT = "Connected to %sfps drone camera stream"
WELCOME_MESSAGE = WELCOME_FORMAT % "30"

# §4 Close codes (RFC 6455 §7.4.1).
CLOSE_NORMAL = const(1000)
CLOSE_GOING_AWAY = const(1001)
CLOSE_PROTOCOL_ERROR = const(1002)
CLOSE_NO_STATUS = const(1005)  # never sent: what a close frame without a body reads as
CLOSE_INVALID_DATA = const(1007)
CLOSE_POLICY_VIOLATION = const(1008)
CLOSE_TOO_BIG = const(1009)
CLOSE_TRY_AGAIN_LATER = const(1013)

# §3 Commands a client may send, as text (§3.3 clock, §3.4 credit flow).
PING = "ping"
GET_STATS = "get_stats"
CLOCK = "clock"
WINDOW = "window"
ACK = "ack"
PONG = "pong"

CAMERA_STARTING = "starting"
CAMERA_OK = "ok"
CAMERA_STALLED = "stalled"
CAMERA_FAILED = "failed"
CAMERA_WAITING = "waiting"  # for its input: a relay's upstream not (yet) reachable


class ProtocolError(Exception):
    """A client message the contract does not allow; `reply` is the JSON error to send back."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reply = error_message(code, message)


def json_object(pairs) -> str:
    """JSON text with keys in the given order, byte-identical on CPython and MicroPython."""
    return "{" + ", ".join([json.dumps(k) + ": " + json.dumps(v) for k, v in pairs]) + "}"


def _with_extra(pairs, extra) -> str:
    if extra:
        for key in sorted(extra):
            pairs.append((key, extra[key]))
    return json_object(pairs)


# §2 Server messages. Fields in the contract come first and never go away; extras follow.
def welcome_message(extra=None) -> str:
    """The welcome; its text names the camera's real rate (`fps` in `extra`), in the
    original's words: "Connected to 30fps drone camera stream" at 30 or when unknown."""
    fps = extra.get("fps") if extra else None
    text = WELCOME_FORMAT % ("%g" % fps) if fps else WELCOME_MESSAGE
    return _with_extra([("type", "welcome"), ("message", text)], extra)


def heartbeat_message(fps: float, clients: int, extra=None) -> str:
    return _with_extra([("type", "heartbeat"), ("fps", round(fps, 1)), ("clients", clients)], extra)


def stats_message(clients: int, fps: float, frames: int, extra=None) -> str:
    pairs = [("type", "stats"), ("clients", clients), ("fps", round(fps, 1)), ("frames", frames)]
    return _with_extra(pairs, extra)


def error_message(code: str, message: str) -> str:
    return json_object([("type", "error"), ("error", code), ("message", message)])


def clock_message(server_us: int) -> str:
    return json_object([("type", "clock"), ("server_us", server_us)])


def window_message(window: int) -> str:
    return json_object([("type", "window"), ("window", window)])


def parse_command(text: str):
    """Split a client's text message into (command, argument).

    Returns:
        (PING | GET_STATS | CLOCK, None), (WINDOW, frames) or (ACK, count).
    Raises:
        ProtocolError: for anything else; its `reply` says what was wrong.
    """
    if len(text) > MAX_CLIENT_MESSAGE_BYTES:
        raise ProtocolError("too_big", "commands are at most %d bytes" % MAX_CLIENT_MESSAGE_BYTES)
    words = text.strip().split()
    name = words[0] if words else ""
    if name in (PING, GET_STATS, CLOCK) and len(words) == 1:
        return name, None
    if name == ACK and len(words) <= 2:
        return ACK, _number(words[1], 1, MAX_WINDOW) if len(words) == 2 else 1
    if name == WINDOW and len(words) == 2:
        return WINDOW, _number(words[1], 0, MAX_WINDOW)
    shown = text if len(text) <= 40 else text[:40] + "..."
    raise ProtocolError(
        "unknown_command",
        "unknown command %s; send ping, get_stats, clock, window N or ack" % json.dumps(shown),
    )


def _number(word: str, low: int, high: int) -> int:
    # Not str.isdigit(): CPython's takes "²", which int() refuses.
    if word and len(word) <= 6 and all(c in "0123456789" for c in word):
        value = int(word)
        if low <= value <= high:
            return value
    raise ProtocolError("bad_argument", "expected a whole number from %d to %d" % (low, high))


# §5.1 The frame tag: a JPEG COM segment right after SOI.
SOI = b"\xff\xd8"
EOI = b"\xff\xd9"
TAG_MAGIC = b"DCAM"
_TAG_FORMAT = ">2sH4sBIQ"  # COM marker, segment length, magic, version, seq, capture_us
TAG_SIZE = const(21)  # struct.calcsize(_TAG_FORMAT)
_TAG_SEGMENT_LENGTH = const(TAG_SIZE - 2)
_COM = b"\xff\xfe"
_SEQ_MASK = const(0xFFFFFFFF)


def write_tag(buffer, offset: int, seq: int, capture_us: int) -> None:
    """Write the TAG_SIZE-byte tag segment into `buffer` at `offset` (no allocation)."""
    struct.pack_into(
        _TAG_FORMAT,
        buffer,
        offset,
        _COM,
        _TAG_SEGMENT_LENGTH,
        TAG_MAGIC,
        PROTOCOL_VERSION,
        seq & _SEQ_MASK,
        capture_us,
    )


def tag_jpeg_into(buffer, offset: int, jpeg, seq: int, capture_us: int, segment=None) -> int:
    """Copy `jpeg` into `buffer` at `offset` with the tag after its SOI; return the end offset.

    `segment`, if given, is a whole JPEG segment (the telemetry of §5.3) written right after
    the tag.
    """
    extra = len(segment) if segment is not None else 0
    end = offset + len(jpeg) + TAG_SIZE + extra
    # Copy the whole JPEG once, then write SOI, the tag and the segment over its shifted SOI:
    # no slice of `jpeg` is made, so MicroPython allocates nothing here.
    buffer[offset + TAG_SIZE + extra : end] = jpeg
    buffer[offset : offset + 2] = SOI
    write_tag(buffer, offset + 2, seq, capture_us)
    if extra:
        start = offset + 2 + TAG_SIZE
        buffer[start : start + extra] = segment
    return end


def tag_jpeg(jpeg, seq: int, capture_us: int) -> bytearray:
    """The JPEG with a tag inserted after its SOI marker: still a valid JPEG."""
    tagged = bytearray(len(jpeg) + TAG_SIZE)
    tag_jpeg_into(tagged, 0, jpeg, seq, capture_us)
    return tagged


def read_tag(jpeg):
    """(seq, capture_us) from a tagged JPEG, or None if it carries no dronecam tag."""
    if len(jpeg) < 2 + TAG_SIZE or bytes(jpeg[0:2]) != SOI:
        return None
    fields = struct.unpack_from(_TAG_FORMAT, jpeg, 2)
    if fields[0] != _COM or fields[1] != _TAG_SEGMENT_LENGTH or fields[2] != TAG_MAGIC:
        return None
    return fields[4], fields[5]


def read_tags(jpeg):
    """Every tag's (seq, capture_us), nearest hop first: a relay keeps the tags before its own."""
    tags: list = []
    if len(jpeg) < 2 or bytes(jpeg[0:2]) != SOI:
        return tags
    offset = 2
    while len(jpeg) >= offset + TAG_SIZE:
        fields = struct.unpack_from(_TAG_FORMAT, jpeg, offset)
        if fields[0] != _COM or fields[1] != _TAG_SEGMENT_LENGTH or fields[2] != TAG_MAGIC:
            break
        tags.append((fields[4], fields[5]))
        offset += TAG_SIZE
    return tags


def strip_tags(jpeg) -> bytes:
    """The JPEG without its tags: the bytes the first camera made."""
    count = len(read_tags(jpeg))
    if not count:
        return bytes(jpeg)
    return bytes(jpeg[0:2]) + bytes(jpeg[2 + count * TAG_SIZE :])


def check_jpeg(jpeg, max_bytes: int = MAX_FRAME_SIZE):
    """None if `jpeg` may be sent, else why not: "oversized", "corrupt" or "truncated" (§6).

    Reads bytes by index, masked to 0-255: the camera module's memoryviews are signed ('b'),
    and indexing allocates nothing on MicroPython.
    """
    size = len(jpeg)
    if size > max_bytes:
        return "oversized"
    if size < 4 or jpeg[0] & 0xFF != 0xFF or jpeg[1] & 0xFF != 0xD8:
        return "corrupt"
    # Cameras pad after EOI (the OV2640 does); a truncated frame has no EOI near its end.
    for index in range(size - 2, max(size - 32, 2) - 1, -1):
        if jpeg[index] & 0xFF == 0xFF and jpeg[index + 1] & 0xFF == 0xD9:
            return None
    return "truncated"


# §7 Camera defaults: the original's VGA, quality 12 on the OV2640's 0-63 scale, 2 buffers.
DEFAULT_WIDTH = const(640)
DEFAULT_HEIGHT = const(480)
DEFAULT_FPS = const(30)
DEFAULT_QUALITY = const(12)
FRAME_BUFFERS = const(2)


# The largest frame any dronecam server sends (a host's --max-frame-bytes at most): clients
# take messages up to this, plus the tags of a few relays.
MAX_FRAME_BYTES_CEILING = const(16 * 1024 * 1024)


def frame_bytes_limit(width: int, height: int, quality: int = DEFAULT_QUALITY) -> int:
    """The frame limit for a camera of this size and quality (§1): the original's
    MAX_FRAME_SIZE for VGA at quality 12 (2.6 bits a pixel), scaled by the frame's area and
    doubled for every 6 steps of better quality; never below MAX_FRAME_SIZE.

    A 2560x1440 camera at quality 12 gets 1200000 bytes: its JPEGs are typically 100-400 KB.
    """
    scale = width * height / (DEFAULT_WIDTH * DEFAULT_HEIGHT)
    if quality < DEFAULT_QUALITY:
        scale *= 2 ** ((DEFAULT_QUALITY - quality) / 6)
    return min(MAX_FRAME_BYTES_CEILING, max(MAX_FRAME_SIZE, int(MAX_FRAME_SIZE * scale)))


def quality_percent(ov2640_quality: int) -> int:
    """The OV2640 scale (0 best .. 63 worst) as a 0-100 % JPEG quality (100 best).

    The MicroPython camera module maps a percentage p to the driver's scale as
    63 - p * 63 // 100 (C integer division); this returns the smallest p that maps back to
    exactly `ov2640_quality`, so 12 (the original's setting) is 81 %.
    """
    if not 0 <= ov2640_quality <= 63:
        raise ValueError("JPEG quality is 0 (best) to 63 (worst) on the OV2640 scale")
    return ((63 - ov2640_quality) * 100 + 62) // 63
