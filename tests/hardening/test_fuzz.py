"""Property tests: the protocol parsers and the servers take any bytes without crashing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
import time
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from dronecam.core import protocol
from dronecam.core.protocol import ProtocolError
from dronecam.tools.wire import check_handshake, client_frame, handshake_request
from support import ListSource, host_server, seconds, synthetic_jpegs
from support_hardening import (
    HANDSHAKE_TIMEOUT_MS,
    HEARTBEAT_MS,
    MIN_FPS,
    SERVERS,
    STREAM_TIMEOUT_MS,
    shared_tls,
)

ERROR_CODES = {"too_big", "unknown_command", "bad_argument"}
JPEG = synthetic_jpegs(1, 160, 128)[0]


@given(st.text(max_size=5000))
def test_parse_command_accepts_or_explains(text):
    check_command(text)


@given(st.sampled_from(["ping", "get_stats", "clock", "window", "ack"]), st.text(max_size=20))
@example(name="window", tail="\u00b2")  # found: str.isdigit() takes it, int() raised ValueError
def test_parse_command_near_misses(name, tail):
    check_command(name + tail)
    check_command(name + " " + tail)


def check_command(text: str) -> None:
    """parse_command returns a known command, or raises a ProtocolError with a JSON reply."""
    try:
        command, argument = protocol.parse_command(text)
    except ProtocolError as error:
        assert error.code in ERROR_CODES
        reply = json.loads(error.reply)
        assert reply["type"] == "error" and reply["error"] == error.code
        assert len(error.reply) < 800  # the echo of the command is cut to 40 characters
        return
    assert command in (protocol.PING, protocol.GET_STATS, protocol.CLOCK, protocol.WINDOW, "ack")
    if command in (protocol.WINDOW, protocol.ACK):
        assert 0 <= argument <= protocol.MAX_WINDOW


@given(st.binary(max_size=200))
def test_read_tag_takes_any_bytes(data):
    for buffer in (data, bytearray(data), memoryview(data)):
        tag = protocol.read_tag(buffer)
        assert tag is None or (tag[0] >= 0 and tag[1] >= 0)
    tagged = protocol.read_tag(protocol.SOI + data)
    assert tagged is None or isinstance(tagged, tuple)


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1))
def test_tag_round_trip(seq, capture_us):
    tagged = protocol.tag_jpeg(JPEG, seq, capture_us)
    assert protocol.read_tag(tagged) == (seq, capture_us)
    assert protocol.check_jpeg(tagged, len(tagged)) is None


@given(st.binary(max_size=300), st.integers(0, 400))
def test_check_jpeg_takes_any_bytes(data, limit):
    for buffer in (data, bytearray(data), memoryview(data)):
        reason = protocol.check_jpeg(buffer, limit)
        assert reason in (None, "oversized", "corrupt", "truncated")
        if reason is None:
            assert data[:2] == protocol.SOI and protocol.EOI in data[-32:]
            assert len(data) <= limit


@given(st.integers(0, len(JPEG) - 1), st.binary(min_size=1, max_size=8))
def test_check_jpeg_never_passes_a_cut_or_damaged_frame(cut, junk):
    assert protocol.check_jpeg(JPEG[:cut] if cut < len(JPEG) - 40 else b"") is not None
    assert protocol.check_jpeg(junk + JPEG[2:]) is not None or junk[:2] == protocol.SOI


# The servers, fuzzed over real sockets. Hypothesis drives a synchronous test, so the server
# (or, for the firmware, the object that runs its process) lives on a loop in its own thread.
class ThreadedServer:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.loop = asyncio.new_event_loop()
        self.errors: list[dict] = []
        self.loop.set_exception_handler(lambda loop, context: self.errors.append(context))
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.stack = contextlib.AsyncExitStack()
        self.server = None

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        limits = dict(
            handshake_timeout_ms=HANDSHAKE_TIMEOUT_MS,
            stream_timeout_ms=STREAM_TIMEOUT_MS,
            heartbeat_interval_ms=HEARTBEAT_MS,
        )
        if self.kind in ("host", "host-tls"):
            tls = shared_tls().server if self.kind == "host-tls" else None
            context = host_server(
                ListSource(synthetic_jpegs(10, 320, 240)), ssl_context=tls, **limits
            )
        else:
            from support_firmware import firmware_server

            context = firmware_server(small_heap=True, **limits)
        self.server = self._call(self.stack.enter_async_context(context))
        self.url = self.server.url
        return self

    def __exit__(self, *exc_info) -> None:
        self._call(self.stack.aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(seconds(10))
        self.loop.close()

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(seconds(20))

    def problems(self) -> list[str]:
        """Exceptions the host's loop caught; for the firmware, a traceback or an exit."""
        found = [str(context.get("exception") or context["message"]) for context in self.errors]
        if self.kind == "firmware":
            if self.server.process.returncode is not None:
                found.append("the firmware exited: %s" % self.server.process.returncode)
            found += [line for line in self.server.lines if "Traceback" in line]
        return found


class ThreadWatcher:
    """A client that keeps reading in a thread of its own, timing every frame."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.frame_times: list[float] = []
        self.clients = -1
        self.ws = None
        self.error: BaseException | None = None
        self.connected = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.connected.wait(seconds(10)), self.error

    def _run(self) -> None:
        try:
            tls = shared_tls().client if self.url.startswith("wss:") else None
            with connect(self.url, max_size=2**20, ssl=tls) as ws:
                self.ws = ws
                self.connected.set()
                for message in ws:
                    if isinstance(message, bytes):
                        self.frame_times.append(time.monotonic())
                    elif message.startswith('{"type": "heartbeat"'):
                        self.clients = json.loads(message)["clients"]
        except BaseException as error:
            self.error = error

    def fps(self, window_s: float = 2.0) -> float:
        start = time.monotonic()
        time.sleep(window_s)
        return sum(1 for t in self.frame_times if t >= start) / (time.monotonic() - start)

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
        self.thread.join(seconds(5))


@pytest.fixture(params=SERVERS, scope="module")
def fuzz_server(request):
    with ThreadedServer(request.param) as server:
        yield server


def raw_connection(url: str) -> socket.socket:
    """A socket after a valid handshake, its 101 response read."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=seconds(5))
    if parts.scheme == "wss":
        sock = shared_tls().client.wrap_socket(sock, server_hostname=parts.hostname)
    request, accept = handshake_request(url)
    sock.sendall(request)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, "closed during the handshake"
        head += chunk
    check_handshake(head, accept)
    return sock


def reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# Mostly well-formed frames with hostile payloads, sometimes anything at all.
frames = st.builds(
    client_frame,
    opcode=st.one_of(st.sampled_from([0, 1, 1, 2, 8, 9, 10]), st.integers(0, 15)),
    payload=st.one_of(
        st.binary(max_size=200),
        st.text(max_size=40).map(str.encode),
        st.binary(max_size=8).map(lambda junk: b"window " + junk),
    ),
    fin=st.one_of(st.just(True), st.booleans()),
    mask=st.one_of(st.just(True), st.booleans()),
    rsv=st.one_of(st.just(0), st.integers(0, 7)),
)
valid_text = st.builds(
    client_frame,
    opcode=st.just(1),
    payload=st.sampled_from([b"ping", b"get_stats", b"clock", b"window 3", b"ack", b"ack 2"]),
)
client_bytes = st.lists(
    st.one_of(frames, valid_text, st.binary(max_size=64)), min_size=1, max_size=6
).map(b"".join)


def test_server_survives_arbitrary_client_bytes(fuzz_server):
    watcher = ThreadWatcher(fuzz_server.url)
    try:

        @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
        @given(data=client_bytes, split=st.integers(0, 50))
        @example(data=client_frame(1, b"\xa1"), split=1)  # found: invalid UTF-8 crashed the host
        @example(data=client_frame(1, b"pi\xe2", fin=False) + client_frame(0, b"\x28"), split=9)
        def one_client(data: bytes, split: int) -> None:
            sock = raw_connection(fuzz_server.url)
            try:
                sock.sendall(data[:split])  # in two writes: the parser must resume mid-frame
                sock.sendall(data[split:])
            except ConnectionError:
                pass  # the server closed on an early error: fine
            reset(sock)
            assert not fuzz_server.problems(), fuzz_server.problems()

        one_client()
        assert watcher.error is None, watcher.error
        rates = []  # as in conftest.Bench: up to three 2-second windows
        while len(rates) < 3 and max(rates, default=0) < MIN_FPS:
            rates.append(watcher.fps(2.0))
        assert max(rates) >= MIN_FPS, "the watching client got %s fps" % rates
        assert not fuzz_server.problems(), fuzz_server.problems()
        deadline = time.monotonic() + seconds(5)
        while watcher.clients != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert watcher.clients == 1, "the server still counts %d clients" % watcher.clients
    finally:
        watcher.close()
