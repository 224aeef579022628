"""outputs/tls.py and wss:// end to end: TLS holds the camera's frame rate, newest frame wins."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from urllib.parse import urlsplit

import pytest
import websockets

from dronecam.outputs.tls import TlsSession
from dronecam.tools.wire import handshake_request
from support import ListSource, host_server, seconds, synthetic_jpegs
from support_hardening import MIN_FPS, RawClient, shared_tls

uvloop = pytest.importorskip("uvloop")

JPEGS = synthetic_jpegs(30, 320, 240)


def test_session_handshakes_carries_both_ways_and_closes():
    tls = shared_tls()
    server = TlsSession(tls.server)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = tls.client.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    for _ in range(10):
        try:
            client.do_handshake()
            break
        except ssl.SSLWantReadError:
            assert server.receive(outgoing.read()) == b""
            incoming.write(server.take_output())
    assert server.receive(outgoing.read()) == b""  # the client's Finished
    assert server.handshake_done
    client.write(b"GET /ws HTTP/1.1\r\n")
    assert server.receive(outgoing.read()) == b"GET /ws HTTP/1.1\r\n"
    incoming.write(server.encrypt(b"x" * 100000))  # more than one TLS record
    received = b""
    while len(received) < 100000:
        received += client.read(65536)
    assert received == b"x" * 100000
    incoming.write(server.close_notify())
    assert client.read(1) == b""  # a clean close_notify, not a ragged EOF


def test_session_refuses_what_is_not_tls():
    with pytest.raises(ssl.SSLError):
        TlsSession(shared_tls().server).receive(b"\x16\x03\x01\x02\x00" + bytes(range(256)) * 2)
    with pytest.raises(ssl.SSLError):
        TlsSession(shared_tls().server).receive(b"HELLO DRONE\r\n\r\n")


async def count_frames(url: str, duration_s: float) -> tuple[float, float]:
    """fps of a websockets client and of a raw TLS socket client reading side by side."""

    async def websockets_client() -> int:
        frames = 0
        async with websockets.connect(url, ssl=shared_tls().client, max_size=2**20) as ws:
            await ws.recv()  # the welcome
            deadline = time.monotonic() + duration_s
            while time.monotonic() < deadline:
                if isinstance(await asyncio.wait_for(ws.recv(), seconds(5)), bytes):
                    frames += 1
        return frames

    async def raw_client() -> int:
        client = await RawClient.connect(url)
        frames = 0
        deadline = time.monotonic() + duration_s
        while time.monotonic() < deadline:
            opcode, _ = await asyncio.wait_for(client.read_frame(), seconds(5))
            frames += opcode == 0x2
        client.close()
        return frames

    counts = await asyncio.gather(websockets_client(), raw_client())
    return counts[0] / duration_s, counts[1] / duration_s


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_wss_streams_at_the_camera_rate(loop):
    async def scenario() -> tuple[float, float]:
        source = ListSource(JPEGS, fps=30)
        async with host_server(source, ssl_context=shared_tls().server) as server:
            assert server.url.startswith("wss://")
            return await count_frames(server.url, 3.0)

    factory = uvloop.new_event_loop if loop == "uvloop" else asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        rates = runner.run(scenario())
    assert min(rates) >= MIN_FPS, "websockets, raw TLS: %.1f, %.1f fps" % rates


def read_slowly(url: str, duration_s: float) -> int:
    """A blocking TLS client with a small receive buffer reading 4 KB every 50 ms: bytes read."""
    parts = urlsplit(url)
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    raw.connect((parts.hostname, parts.port))
    with shared_tls().client.wrap_socket(raw, server_hostname=parts.hostname) as sock:
        sock.settimeout(seconds(5))
        sock.sendall(handshake_request(url)[0])
        received = 0
        deadline = time.monotonic() + duration_s
        while time.monotonic() < deadline:
            received += len(sock.recv(4096))
            time.sleep(0.05)
    return received


async def test_a_slow_tls_reader_skips_frames_and_holds_at_most_one_frame():
    jpegs = synthetic_jpegs(30, 640, 480)
    source = ListSource(jpegs, fps=30)
    async with host_server(
        source, ssl_context=shared_tls().server, send_buffer_bytes=8192, max_clients=3
    ) as server:
        largest = dropped = 0

        async def watch_buffers() -> None:
            nonlocal largest, dropped
            while True:
                for connection in server.connections:
                    if connection.transport is not None:
                        largest = max(largest, connection.transport.get_write_buffer_size())
                    if connection.subscription is not None:
                        dropped = max(dropped, connection.subscription.frames_dropped)
                await asyncio.sleep(0.005)

        watching = asyncio.create_task(watch_buffers())
        try:
            slow_bytes, (fast_fps, _) = await asyncio.gather(
                asyncio.to_thread(read_slowly, server.url, 4.0), count_frames(server.url, 3.0)
            )
        finally:
            watching.cancel()
    assert fast_fps >= MIN_FPS, fast_fps
    assert slow_bytes < 4.5 * 80 * 1024, slow_bytes  # it read at its own pace
    assert dropped > 30, dropped
    # One frame partly written, encrypted (a few bytes per 16 KB record), and a heartbeat.
    frame_bytes = max(len(jpeg) for jpeg in jpegs) + 64
    assert largest <= frame_bytes * 1.01 + 4096, (largest, frame_bytes)
