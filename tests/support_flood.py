"""Flooding clients in a child process, so that what they cost is not charged to the server.

The host server of the hardening tests runs in the test's own process; a flooder beside it
on the same event loop would slow the watching client as much as the server does.
`python support_flood.py SPEC` runs flooders one after another and prints their close codes.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import struct
import sys
import time
from urllib.parse import urlsplit

from dronecam.tools.wire import handshake_request


def _connect(url: str, cafile: str | None) -> tuple[socket.socket, bytes]:
    """A socket after a 101, and what came after the response's head."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
    if parts.scheme == "wss":
        context = ssl.create_default_context(cafile=cafile)
        sock = context.wrap_socket(sock, server_hostname=parts.hostname)
    sock.sendall(handshake_request(url)[0])
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head[:40].decode("latin-1"))
    return sock, head[head.index(b"\r\n\r\n") + 4 :]


def _close_code(buffer: bytearray) -> list | None:
    """[code, reason] of the first close frame in `buffer` (server frames), if it holds one."""
    at = 0
    while len(buffer) - at >= 2:
        opcode, size = buffer[at] & 0x0F, buffer[at + 1] & 0x7F
        header = 2
        if size == 126:
            if len(buffer) - at < 4:
                return None
            size, header = struct.unpack_from(">H", buffer, at + 2)[0], 4
        elif size == 127:
            if len(buffer) - at < 10:
                return None
            size, header = struct.unpack_from(">Q", buffer, at + 2)[0], 10
        if len(buffer) - at < header + size:
            return None
        if opcode == 0x8:
            payload = buffer[at + header : at + header + size]
            if len(payload) < 2:
                return [1005, ""]
            return [struct.unpack(">H", payload[:2])[0], payload[2:].decode(errors="replace")]
        at += header + size
    del buffer[:at]
    return None


def flood_once(url: str, opening: bytes, burst: bytes, until: float, cafile: str | None):
    """One flooder: `opening`, then `burst` after `burst` while reading; its [close code,
    reason], or None if it was still open when time ran out."""
    sock, rest = _connect(url, cafile)
    received = bytearray(rest)
    try:
        sock.sendall(opening)
        while time.monotonic() < until:
            sock.settimeout(5)  # whole bursts: a partial one would garble the frames after it
            try:
                sock.sendall(burst)
            except OSError:
                break  # the server has closed: its close frame may be waiting
            sock.setblocking(False)
            while True:
                try:
                    chunk = sock.recv(65536)
                except (ssl.SSLWantReadError, BlockingIOError):
                    break
                except OSError:
                    return _close_code(received)
                if not chunk:
                    return _close_code(received)
                received += chunk
                code = _close_code(received)
                if code is not None:
                    return code
        sock.settimeout(1)  # time is up, or sending failed: a moment for the close frame
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            received += chunk
            if _close_code(received) is not None:
                break
        return _close_code(received)
    finally:
        sock.close()


def main(spec: dict) -> list:
    until = time.monotonic() + spec["duration_s"]
    codes = []
    while time.monotonic() < until - 0.5:  # each flooder gets time to flood
        codes.append(
            flood_once(
                spec["url"],
                bytes.fromhex(spec["opening"]),
                bytes.fromhex(spec["burst"]),
                until,
                spec.get("cafile"),
            )
        )
        time.sleep(spec.get("pause_s", 0.05))
    return codes


async def flood_from_a_child(
    url: str, opening: bytes, burst: bytes, duration_s: float, cafile: str | None = None
) -> list:
    """Run flooders one after another for `duration_s` in a child process: their [close code,
    reason] (None: not closed)."""
    spec = {
        "url": url,
        "opening": opening.hex(),
        "burst": burst.hex(),
        "duration_s": duration_s,
        "cafile": cafile,
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        json.dumps(spec),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    out, _ = await asyncio.wait_for(child.communicate(), duration_s + 30)
    assert child.returncode == 0, child.returncode
    return json.loads(out)


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
