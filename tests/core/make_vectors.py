"""Writes tests/core/vectors.json from independent implementations, never from dronecam.core.

websockets' frame serializer, hashlib/base64 and struct make the expected bytes; the
messages are the contract's text. Run: python tests/core/make_vectors.py tests/core/vectors.json
"""

import base64
import hashlib
import json
import struct
import sys

from websockets.frames import Frame, Opcode


def accept(key):
    return base64.b64encode(
        hashlib.sha1(key.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
    ).decode()


def cf(op, data, fin=True, mask=True):
    return Frame(op, data, fin).serialize(mask=mask, extensions=[]).hex()


def header(op, n):
    first = 0x80 | op
    if n < 126:
        return struct.pack(">BB", first, n).hex()
    if n < 65536:
        return struct.pack(">BBH", first, 126, n).hex()
    return struct.pack(">BBQ", first, 127, n).hex()


key = "dGhlIHNhbXBsZSBub25jZQ=="
ok = (
    "GET /ws HTTP/1.1\r\nHost: 192.168.4.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
    % key
)
requests = [
    {"request": ok, "status": 101, "accept": "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="},
    {
        "request": ok.replace("GET /ws ", "GET /ws?token=1 ")
        .replace("Connection: Upgrade", "Connection: keep-alive, Upgrade")
        .replace("Upgrade: websocket", "upgrade: WebSocket"),
        "status": 101,
        "accept": "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
    },
    {"request": ok.replace("GET /ws ", "GET / "), "status": 404},
    {"request": ok.replace("GET /ws ", "GET /index.html "), "status": 404},
    {"request": ok.replace("GET ", "POST "), "status": 405},
    {"request": "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", "status": 426},
    {"request": ok.replace("Version: 13", "Version: 8"), "status": 426},
    {"request": ok.replace(key, "c2hvcnQ="), "status": 400},
    {"request": ok.replace(key, "not base64!!"), "status": 400},
    {"request": ok.replace("Host: 192.168.4.1\r\n", ""), "status": 400},
    {"request": "GARBAGE\r\n\r\n", "status": 400},
    {"request": ok.replace("Host: 192.168.4.1", "Host 192.168.4.1"), "status": 400},
    {"request": "GET /ws HTTP/1.1\r\n" + "X-Pad: %s\r\n" % ("a" * 5000) + "\r\n", "status": 431},
    # Refused at once, before the blank line: RFC 6455 §4.1 needs HTTP/1.1 and CRLF lines.
    {"request": ok.replace(" HTTP/1.1\r\n", " HTTP/1.0\r\n"), "status": 400},
    {"request": "GET /ws HTTP/1.0\r\n", "status": 400},
    {"request": ok.replace("\r\n\r\n", "\r\nContent-Length: 5\r\n\r\n"), "status": 400},
    {"request": ok.replace("\r\n\r\n", "\r\nTransfer-Encoding: chunked\r\n\r\n"), "status": 400},
    {"request": ok.replace("\r\n", "\n"), "status": 400},
    {"request": "GET /ws HTTP/1.1\r\nHost: x\n", "status": 400},
    {"request": "\x16\x03\x01\x02\x00\x01\x00\x01\x7c\x03\x03", "status": 400},
]
frames = []


def add(parts, events=None, error=None, max_bytes=4096):
    frames.append({"hex": "".join(parts), "max": max_bytes, "events": events or [], "error": error})


add([cf(Opcode.TEXT, b"ping")], [[1, "ping"]])
add([cf(Opcode.TEXT, "ack 3 é".encode())], [[1, "ack 3 é"]])
add([cf(Opcode.BINARY, b"\x00\x01\x02")], [[2, "000102"]])
add(
    [
        cf(Opcode.TEXT, b"get_", fin=False),
        cf(Opcode.PING, b"hi"),
        cf(Opcode.CONT, b"sta", fin=False),
        cf(Opcode.CONT, b"ts"),
    ],
    [[9, "6869"], [1, "get_stats"]],
)
add([cf(Opcode.PONG, b"")], [[10, ""]])
add([cf(Opcode.CLOSE, struct.pack(">H", 1000) + b"bye")], [[8, [1000, "bye"]]])
add([cf(Opcode.CLOSE, b"")], [[8, [1005, ""]]])
add([cf(Opcode.TEXT, b"x" * 300)], [[1, "x" * 300]])
add(["81ff" + struct.pack(">Q", 70000).hex() + "01020304"], error=1009, max_bytes=65536)
add([cf(Opcode.TEXT, b"ping", mask=False)], error=1002)
add([cf(Opcode.TEXT, b"x" * 4097)], error=1009)
add([cf(Opcode.TEXT, b"x" * 3000, fin=False), cf(Opcode.CONT, b"x" * 1200)], error=1009)
add([cf(Opcode.TEXT, b"\xff\xfe")], error=1007)
add([cf(Opcode.CONT, b"abc")], error=1002)
add([cf(Opcode.TEXT, b"a", fin=False), cf(Opcode.TEXT, b"b")], error=1002)
add(["89fe007e" + "00000000" + "70" * 126], error=1002)
add([cf(Opcode.CLOSE, b"\x03")], error=1002)
add([cf(Opcode.CLOSE, struct.pack(">H", 999))], error=1002)
add([cf(Opcode.CLOSE, struct.pack(">H", 1005))], error=1002)
add([cf(Opcode.CLOSE, struct.pack(">H", 4000) + b"\xff")], error=1007)
add(["c180" + "01020304"], error=1002)  # RSV1 set
add(["8380" + "01020304"], error=1002)  # reserved opcode 3
add(["0980" + "01020304"], error=1002)  # fragmented ping
add(["81ff" + "7fffffffffffffff"], error=1009)  # a 2**63 - 1 byte text
# Fragments are counted: empty continuations add no bytes (at most 64 frames per message).
add(
    [cf(Opcode.TEXT, b"", fin=False)]
    + [cf(Opcode.CONT, b"", fin=False)] * 62
    + [cf(Opcode.CONT, b"")],
    [[1, ""]],
)
add([cf(Opcode.TEXT, b"", fin=False)] + [cf(Opcode.CONT, b"", fin=False)] * 64, error=1009)
add(
    [cf(Opcode.TEXT, b"", fin=False), cf(Opcode.CONT, b""), cf(Opcode.TEXT, b"ping")],
    [[1, ""], [1, "ping"]],
)
headers = [
    [op, n, header(op, n)]
    for op, n in [(1, 0), (1, 125), (2, 126), (2, 65535), (2, 65536), (2, 100021), (8, 2), (10, 5)]
]


def tag(jpeg, seq, us):
    return (
        jpeg[:2]
        + struct.pack(">2sH4sBIQ", b"\xff\xfe", 19, b"DCAM", 1, seq & 0xFFFFFFFF, us)
        + jpeg[2:]
    ).hex()


tiny = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")
tags = [
    {"jpeg": tiny.hex(), "seq": s, "capture_us": us, "tagged": tag(tiny, s, us)}
    for s, us in [(1, 0), (4294967295, 18446744073709551615), (1450, 123456789)]
]
messages = [
    [
        "welcome",
        [],
        None,
        '{"type": "welcome", "message": "Connected to 30fps drone camera stream"}',
    ],
    [
        "welcome",
        [],
        {"version": 1, "max_clients": 5},
        '{"type": "welcome", "message": "Connected to 30fps drone camera stream", "max_clients": 5, "version": 1}',
    ],
    ["heartbeat", [28.5, 2], None, '{"type": "heartbeat", "fps": 28.5, "clients": 2}'],
    [
        "heartbeat",
        [29.04, 0],
        {"camera": "stalled"},
        '{"type": "heartbeat", "fps": 29.0, "clients": 0, "camera": "stalled"}',
    ],
    [
        "stats",
        [2, 29.1, 1450],
        None,
        '{"type": "stats", "clients": 2, "fps": 29.1, "frames": 1450}',
    ],
    [
        "error",
        ["server_full", "try later"],
        None,
        '{"type": "error", "error": "server_full", "message": "try later"}',
    ],
    ["clock", [1234567], None, '{"type": "clock", "server_us": 1234567}'],
    ["window", [2], None, '{"type": "window", "window": 2}'],
]
commands = [
    ["ping", ["ping", None]],
    [" get_stats\n", ["get_stats", None]],
    ["clock", ["clock", None]],
    ["ack", ["ack", 1]],
    ["ack 3", ["ack", 3]],
    ["window 0", ["window", 0]],
    ["window 64", ["window", 64]],
    ["window 65", "bad_argument"],
    ["ack -1", "bad_argument"],
    ["window", "unknown_command"],
    ["PING", "unknown_command"],
    ["", "unknown_command"],
    ["x" * 5000, "too_big"],
]
quality = [[0, 100], [1, 99], [10, 85], [12, 81], [20, 69], [62, 2], [63, 0]]
jpegs = [
    [tiny.hex(), None],
    [(tiny + b"\x00" * 10).hex(), None],
    [tiny[:-2].hex(), "truncated"],
    ["0000ffd9", "corrupt"],
    ["ffd8", "corrupt"],
]
json.dump(
    {
        "accept": [
            [key, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="],
            ["x3JJHMbDL1EzLkh9GBhXDw==", accept("x3JJHMbDL1EzLkh9GBhXDw==")],
        ],
        "requests": requests,
        "server_headers": headers,
        "client_frames": frames,
        "tags": tags,
        "messages": messages,
        "commands": commands,
        "quality": quality,
        "jpegs": jpegs,
    },
    open(sys.argv[1], "w"),
    indent=1,
    ensure_ascii=True,
)
