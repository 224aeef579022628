"""Hostile-client tooling: a raw-socket WebSocket client, a watching client, leak snapshots."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import os
import socket
import ssl
import struct
import tempfile
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import psutil
import websockets

from dronecam.core.websocket import close_payload
from dronecam.tools.wire import client_frame, upgrade_request
from support import TIMEOUT_SCALE, seconds

__all__ = ["client_frame", "close_payload"]

# The floor for "the other clients still stream" after each hostile client.
MIN_FPS = 25 / TIMEOUT_SCALE

HANDSHAKE_TIMEOUT_MS = 500
STREAM_TIMEOUT_MS = 1000
# Timeouts are enforced on the heartbeat tick; a short one keeps the tests short.
HEARTBEAT_MS = 100
# Resident memory may grow a little (allocator arenas, caches): far less than a leak per client.
RSS_SLACK_BYTES = 32 * 1024 * 1024

# "host-tls" is the host server behind wss:// (the firmware has no TLS).
SERVERS = ["host", "host-tls", "firmware"]


def handshake_request(path: str, host: str, extra_headers: tuple[str, ...] = ()) -> bytes:
    return upgrade_request(path, host, extra_headers)[0]


class RawClient:
    """A WebSocket client on a bare socket, so tests can send what no library would."""

    def __init__(self, url: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.url = url
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(
        cls, url: str, receive_buffer_bytes: int | None = None, tls: bool | None = None
    ) -> RawClient:
        """A TCP connection to `url`'s server, with TLS for wss:// (unless `tls` says otherwise)."""
        parts = urlsplit(url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer_bytes:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer_bytes)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (parts.hostname, parts.port))
        if tls is None:
            tls = parts.scheme == "wss"
        options = {"ssl": shared_tls().client, "server_hostname": parts.hostname} if tls else {}
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(sock=sock, **options), seconds(10)
        )
        return cls(url, reader, writer)

    @classmethod
    async def connect(cls, url: str, **options) -> RawClient:
        """Open and complete a valid handshake (asserting 101)."""
        client = await cls.open(url, **options)
        status, _ = await client.handshake()
        assert status == 101, status
        return client

    async def handshake(self, extra_headers: tuple[str, ...] = ()) -> tuple[int, bytes]:
        parts = urlsplit(self.url)
        path = parts.path + ("?" + parts.query if parts.query else "")
        self.send(handshake_request(path, parts.netloc, extra_headers))
        return await self.read_response()

    async def read_response(self) -> tuple[int, bytes]:
        """(status, raw head) of the server's HTTP response, or (0, b"") on EOF."""
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), seconds(5))
        return int(head.split(b" ", 2)[1]), head

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def read_frame(self) -> tuple[int, bytes]:
        """(opcode, payload) of the next server frame; raises IncompleteReadError at EOF."""
        first, second = await self.reader.readexactly(2)
        assert second & 0x80 == 0, "server frames are never masked"
        size = second & 0x7F
        if size == 126:
            (size,) = struct.unpack(">H", await self.reader.readexactly(2))
        elif size == 127:
            (size,) = struct.unpack(">Q", await self.reader.readexactly(8))
        return first & 0x0F, await self.reader.readexactly(size)

    async def next_text(self) -> str:
        while True:
            opcode, payload = await asyncio.wait_for(self.read_frame(), seconds(5))
            if opcode == 0x1:
                return payload.decode()
            assert opcode == 0x2, "unexpected opcode %d" % opcode

    async def next_json(self, **wanted) -> dict:
        """The next JSON text message whose fields include `wanted` (heartbeats skipped)."""
        while True:
            text = await self.next_text()
            if text.startswith("{"):
                message = json.loads(text)
                if all(message.get(key) == value for key, value in wanted.items()):
                    return message

    async def close_frame(self) -> tuple[int, str] | None:
        """Read past data frames to the server's close frame: (code, reason), None if EOF first."""

        async def read() -> tuple[int, str] | None:
            try:
                while True:
                    opcode, payload = await self.read_frame()
                    if opcode == 0x8:
                        code = struct.unpack(">H", payload[:2])[0] if payload else 1005
                        return code, payload[2:].decode()
            except (asyncio.IncompleteReadError, ConnectionError):
                return None

        return await asyncio.wait_for(read(), seconds(5))

    async def wait_closed(self, timeout_s: float) -> float:
        """Seconds until the server ends the connection (EOF or reset); fails after `timeout_s`."""
        start = time.monotonic()

        self.writer.transport.resume_reading()

        async def drain() -> None:
            with contextlib.suppress(ConnectionError):
                while await self.reader.read(65536):
                    pass

        await asyncio.wait_for(drain(), timeout_s)
        return time.monotonic() - start

    def stop_reading(self) -> None:
        """Leave everything the server sends in the kernel, as a stuck client does."""
        self.writer.transport.pause_reading()

    def reset(self) -> None:
        """Drop the connection with a TCP reset, as a crashed client or a lost link would."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    def half_close(self) -> None:
        """Send a TCP FIN and keep reading (under TLS too, where write_eof() is refused)."""
        self.writer.get_extra_info("socket").shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.writer.transport.abort()


class Watcher:
    """A well-behaved client that keeps reading: frame arrival times and the latest heartbeat."""

    def __init__(self, url: str, ssl_context=None) -> None:
        self.url = url
        if ssl_context is None and url.startswith("wss:"):
            ssl_context = shared_tls().client
        self.ssl_context = ssl_context
        self.frame_times: list[float] = []
        self.heartbeat: dict = {}
        self.connected = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> Watcher:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.connected.wait(), seconds(10))
        return self

    async def __aexit__(self, *exc_info) -> None:
        assert self._task is not None
        self._task.cancel()
        done, _ = await asyncio.wait([self._task], timeout=seconds(15))
        if not done:
            stacks = [task.get_stack() for task in asyncio.all_tasks()]
            raise AssertionError("the watching client did not stop: %s" % stacks)
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        async with websockets.connect(self.url, ssl=self.ssl_context, max_size=2**20) as ws:
            async for message in ws:
                if isinstance(message, bytes):
                    self.frame_times.append(time.monotonic())
                    self.connected.set()
                elif message.startswith('{"type": "heartbeat"'):
                    self.heartbeat = json.loads(message)
        raise AssertionError("the server closed the watching client")

    async def fps(self, window_s: float = 2.0) -> float:
        """Frames per second received over the next `window_s` seconds."""
        assert self._task is not None
        if self._task.done():
            self._task.result()
        start = time.monotonic()
        await asyncio.sleep(window_s)
        end = time.monotonic()
        if self._task.done():
            self._task.result()
        return sum(1 for t in self.frame_times if start <= t < end) / (end - start)


async def settle(
    measure: Callable[[], dict], expected: dict, timeout_s: float, check: Callable
) -> dict:
    """Poll `measure()` until `check(expected, now)` is true or time runs out; the last reading."""
    deadline = time.monotonic() + timeout_s
    while True:
        gc.collect()
        now = measure()
        if check(expected, now) or time.monotonic() > deadline:
            return now
        await asyncio.sleep(0.05)


def process_resources(pid: int | None = None) -> dict:
    """File descriptors and resident memory of a process (this one by default)."""
    process = psutil.Process(pid)
    return {"fds": process.num_fds(), "rss_bytes": process.memory_info().rss}


def self_signed_certificate(directory) -> tuple[str, str]:
    """A certificate and key for 127.0.0.1 and localhost, made on the spot: (certfile, keyfile)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dronecam test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile = os.path.join(directory, "cert.pem")
    keyfile = os.path.join(directory, "key.pem")
    with open(certfile, "wb") as file:
        file.write(certificate.public_bytes(serialization.Encoding.PEM))
    with open(keyfile, "wb") as file:
        file.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return certfile, keyfile


class SelfSignedTls:
    """A self-signed certificate for 127.0.0.1, and both sides' contexts for it."""

    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="dronecam-tls-")
        self.certfile, self.keyfile = self_signed_certificate(self.directory)
        self.server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server.load_cert_chain(self.certfile, self.keyfile)
        self.client = ssl.create_default_context(cafile=self.certfile)


@functools.cache
def shared_tls() -> SelfSignedTls:
    """One certificate for the whole run (making a key takes a moment)."""
    return SelfSignedTls()
