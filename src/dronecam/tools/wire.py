"""One raw-wire WebSocket client side: what the benchmark, the soak and the hostile tests send.

Client frames are masked (RFC 6455 §5.3) unless a test says otherwise; the accept key comes
from `core.websocket`, the same code the firmware checks it with.
"""

from __future__ import annotations

import base64
import os
import struct
from urllib.parse import urlsplit

from ..core.websocket import OP_PONG, OP_TEXT, accept_key


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


def upgrade_request(path: str, host: str, extra_headers: tuple[str, ...] = ()) -> tuple[bytes, str]:
    """The upgrade request for `path` on `host`, and the Sec-WebSocket-Accept it must get back."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET %s HTTP/1.1" % path,
        "Host: %s" % host,
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: %s" % key,
        "Sec-WebSocket-Version: 13",
        *extra_headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), accept_key(key)


def handshake_request(url: str) -> tuple[bytes, bytes]:
    """The upgrade request for a ws:// URL and the Sec-WebSocket-Accept it must be answered with."""
    parts = urlsplit(url)
    path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    request, accept = upgrade_request(path, parts.netloc)
    return request, accept.encode()


def check_handshake(response: bytes, accept: bytes) -> None:
    """Raise ConnectionError unless `response` is a 101 with the right Sec-WebSocket-Accept."""
    status, *lines = response.decode("latin-1").split("\r\n")
    if not status.startswith("HTTP/1.1 101"):
        raise ConnectionError("handshake refused: %s" % status)
    headers = dict(line.split(":", 1) for line in lines if ":" in line)
    answers = [v.strip() for k, v in headers.items() if k.lower() == "sec-websocket-accept"]
    if answers != [accept.decode()]:
        raise ConnectionError("handshake answered with a wrong Sec-WebSocket-Accept")
