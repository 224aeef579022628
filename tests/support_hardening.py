"""Hostile-client tooling: the raw client (tools/wire.py) set for tests, a watching client, leak snapshots."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import os
import ssl
import tempfile
import time
from collections.abc import Callable

import psutil
import websockets

from dronecam.tools import wire
from support import TIMEOUT_SCALE, seconds

# The floor for "the other clients still stream" after each hostile client.
MIN_FPS = 25 / TIMEOUT_SCALE

HANDSHAKE_TIMEOUT_MS = 500
STREAM_TIMEOUT_MS = 1000
# Timeouts are enforced on the heartbeat tick; a short one keeps the tests short.
HEARTBEAT_MS = 100
# Resident memory may grow a little (allocator arenas, caches): far less than a leak per client.
RSS_SLACK_BYTES = 32 * 1024 * 1024
# The firmware's MicroPython heap after collection: what a leak of one connection would exceed.
HEAP_SLACK_BYTES = 8 * 1024

# "host-tls" is the host server behind wss:// (the firmware has no TLS).
SERVERS = ["host", "host-tls", "firmware"]


class RawClient(wire.RawClient):
    """tools/wire.py's raw-wire client: the suite's scaled timeout, and wss:// with its certificate."""

    timeout_s = seconds(5)

    @classmethod
    async def open(
        cls, url: str, receive_buffer_bytes: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> wire.RawClient:
        if ssl_context is None and url.startswith("wss:"):
            ssl_context = shared_tls().client
        return await super().open(url, receive_buffer_bytes, ssl_context)


class Watcher:
    """A well-behaved client that keeps reading: frame arrival times and the latest heartbeat."""

    def __init__(self, url: str, ssl_context=None) -> None:
        self.url = url
        if ssl_context is None and url.startswith("wss:"):
            ssl_context = shared_tls().client
        self.ssl_context = ssl_context
        self.frame_times: list[float] = []
        self.heartbeat: dict = {}
        self.heartbeats = 0
        self.heap_peak = 0  # the firmware's: the largest heap_used heartbeats reported
        self.connected = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> Watcher:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.connected.wait(), seconds(10))
        # Two heartbeats after the first frame: the firmware's heap has settled by then.
        deadline, wanted = time.monotonic() + seconds(5), self.heartbeats + 2
        while self.heartbeats < wanted and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        self.heap_peak = self.heartbeat.get("heap_used", 0)
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
                    self.heartbeats += 1
                    self.heap_peak = max(self.heap_peak, self.heartbeat.get("heap_used", 0))
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
