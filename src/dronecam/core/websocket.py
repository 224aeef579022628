"""The RFC 6455 framing dronecam's servers write (docs/protocol.md §4).

Servers send unmasked frames, so one header serves every client: a frame is framed once
and the same bytes are written to each connection.
"""

import struct

from .compat import const

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
