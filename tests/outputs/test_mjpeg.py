"""HTTP MJPEG and snapshots (`--http`) with the real players: OpenCV, PyAV, raw HTTP clients."""

from __future__ import annotations

import asyncio
import ssl
import time
from urllib.parse import quote

import av
import cv2
import numpy as np
import pytest
import websockets

from dronecam.core import protocol
from dronecam.core.source import FeedSettings
from dronecam.outputs.mjpeg import MjpegOutput
from dronecam.outputs.snapshot import SnapshotOutput
from dronecam.tools.http_client import MjpegStream, http_get
from support import ListSource, host_server, seconds, synthetic_jpegs
from support_hardening import MIN_FPS, self_signed_certificate

JPEGS = synthetic_jpegs(30)
TOKEN = "t0ken/with+odd=chars"


def http_outputs() -> list:
    return [MjpegOutput(), SnapshotOutput()]


def http_url(server, path: str) -> str:
    return server.url_for(path)


def opencv_fps(url: str, frames: int) -> tuple[float, tuple]:
    """Frames per second cv2.VideoCapture reads from `url` (after its first frame)."""
    capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG)
    try:
        assert capture.isOpened(), "OpenCV could not open %s" % url
        ok, image = capture.read()
        assert ok
        started = time.monotonic()
        for _ in range(frames):
            ok, image = capture.read()
            assert ok
        return frames / (time.monotonic() - started), image.shape
    finally:
        capture.release()


def pyav_frames(url: str, frames: int, options: dict | None = None) -> tuple[float, list]:
    """Frames per second PyAV decodes from `url`, and the decoded frames' sizes."""
    with av.open(url, options=options or {}, timeout=seconds(10)) as container:
        assert container.format.name == "mpjpeg"
        sizes = []
        started = 0.0
        for frame in container.decode(video=0):
            if not sizes:
                started = time.monotonic()
            sizes.append((frame.width, frame.height))
            if len(sizes) > frames:
                break
        return frames / (time.monotonic() - started), sizes


async def test_opencv_reads_the_stream_at_the_camera_rate():
    async with host_server(ListSource(JPEGS), outputs=http_outputs()) as server:
        fps, shape = await asyncio.to_thread(opencv_fps, http_url(server, "/stream.mjpg"), 60)
    assert shape == (480, 640, 3)
    assert fps >= MIN_FPS, fps


async def test_pyav_decodes_the_stream():
    async with host_server(ListSource(JPEGS), outputs=http_outputs()) as server:
        fps, sizes = await asyncio.to_thread(pyav_frames, http_url(server, "/stream.mjpg"), 45)
    assert set(sizes) == {(640, 480)}
    assert fps >= MIN_FPS, fps


async def test_every_part_is_a_tagged_jpeg_built_once_for_all_clients():
    output = MjpegOutput()
    async with host_server(ListSource(JPEGS), outputs=[output], max_clients=3) as server:
        streams = [await MjpegStream.open(http_url(server, "/stream.mjpg")) for _ in range(3)]
        try:
            assert [s.status for s in streams] == [200, 200, 200]
            head = streams[0].headers
            assert head["content-type"] == "multipart/x-mixed-replace; boundary=dronecam"
            assert head["cache-control"] == "no-store"
            received = [
                [await asyncio.wait_for(s.next_jpeg(), seconds(5)) for _ in range(20)]
                for s in streams
            ]
            published = server.hub.frames_published
            built = output.parts.built
        finally:
            for stream in streams:
                stream.close()
    for jpegs in received:
        seqs = [protocol.read_tag(jpeg)[0] for jpeg in jpegs]
        assert seqs == sorted(seqs) and len(set(seqs)) == 20
        assert protocol.strip_tags(jpegs[0]) in JPEGS
    # Three clients, one part per frame: never one per client.
    assert built <= published + 1, (built, published)


async def test_a_slow_client_skips_frames_and_never_slows_the_others():
    async with host_server(
        ListSource(JPEGS), outputs=http_outputs(), send_buffer_bytes=8192, max_clients=3
    ) as server:
        url = http_url(server, "/stream.mjpg")
        slow = await MjpegStream.open(url, receive_buffer_bytes=8192)
        read_slowly = 0
        largest_backlog = 0

        async def read_slow() -> None:
            nonlocal read_slowly, largest_backlog
            while True:
                await slow.next_jpeg()
                read_slowly += 1
                largest_backlog = max(largest_backlog, *backlogs(server))
                await asyncio.sleep(0.25)

        task = asyncio.create_task(read_slow())
        try:
            fps, _ = await asyncio.to_thread(opencv_fps, url, 90)
            slow_subscription = max(server.hub.subscriptions, key=lambda s: s.frames_dropped)
        finally:
            task.cancel()
            slow.close()
    assert fps >= MIN_FPS, fps
    assert read_slowly <= 20, read_slowly
    assert slow_subscription.frames_dropped > 30, slow_subscription.frames_dropped
    # At most one partly written frame waits in user space: nothing queues up.
    assert largest_backlog <= max(len(jpeg) for jpeg in JPEGS) + 200, largest_backlog


def backlogs(server) -> list[int]:
    return [0] + [
        c.transport.get_write_buffer_size()
        for c in server.connections
        if c.transport and not c.transport.is_closing()
    ]


async def test_a_client_that_never_reads_is_closed_after_the_stream_timeout():
    async with host_server(
        ListSource(JPEGS),
        outputs=http_outputs(),
        send_buffer_bytes=8192,
        stream_timeout_ms=500,
        heartbeat_interval_ms=100,
    ) as server:
        stuck = await MjpegStream.open(http_url(server, "/stream.mjpg"), receive_buffer_bytes=4096)
        try:
            async with asyncio.timeout(seconds(5)):
                while not server.hub.subscriptions:
                    await asyncio.sleep(0.05)
                while server.connections or server.hub.subscriptions:
                    await asyncio.sleep(0.05)
        finally:
            stuck.close()


async def test_snapshot_is_the_newest_frame_tagged_and_never_cached():
    async with host_server(ListSource(JPEGS), outputs=http_outputs()) as server:
        url = http_url(server, "/snapshot.jpg")
        while server.hub.latest is None:
            await asyncio.sleep(0.01)
        first = await http_get(url)
        await asyncio.sleep(0.1)
        second = await http_get(url)
        published = server.hub.frames_published
    for answer in (first, second):
        assert answer.status == 200
        assert answer.headers["content-type"] == "image/jpeg"
        assert answer.headers["cache-control"] == "no-store"
        assert int(answer.headers["content-length"]) == len(answer.body)
        image = cv2.imdecode(np.frombuffer(answer.body, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (480, 640, 3)
    first_seq, first_us = protocol.read_tag(first.body)
    second_seq, second_us = protocol.read_tag(second.body)
    assert 1 <= first_seq < second_seq <= published
    assert second_us > first_us


async def test_snapshot_without_a_frame_is_503_with_the_reason():
    async with host_server(ListSource([], loop=False), outputs=http_outputs()) as server:
        answer = await http_get(http_url(server, "/snapshot.jpg"))
    assert answer.status == 503
    assert answer.body == b"No frame: the camera is starting\n"
    assert answer.headers["retry-after"] == "1"


async def test_snapshot_after_a_stall_is_503_not_a_stale_frame():
    source = ListSource(JPEGS[:3], loop=False)
    feed = FeedSettings(stall_timeout_ms=300, retry_min_ms=5000)
    async with host_server(source, feed, outputs=http_outputs()) as server:
        async with asyncio.timeout(seconds(5)):
            while server.feed.state != protocol.CAMERA_STALLED:
                await asyncio.sleep(0.05)
        answer = await http_get(http_url(server, "/snapshot.jpg"))
    assert server.hub.latest is not None
    assert answer.status == 503
    assert answer.body.startswith(b"No frame: the camera is stalled (")


async def test_full_server_answers_503_and_shares_the_limit_with_websocket_clients():
    async with host_server(ListSource(JPEGS), outputs=http_outputs(), max_clients=2) as server:
        url = http_url(server, "/stream.mjpg")
        admitted = await MjpegStream.open(url)
        await asyncio.wait_for(admitted.next_jpeg(), seconds(5))
        async with websockets.connect(server.url) as ws:
            assert '"welcome"' in await asyncio.wait_for(ws.recv(), seconds(5))
            refused = await http_get(url)
            assert refused.status == 503
            assert refused.body == b"Server full: 2 of 2 clients connected, try again later\n"
            assert refused.headers["retry-after"] == "1"
            # The snapshot is one answer, not a client: it is served even while full.
            assert (await http_get(http_url(server, "/snapshot.jpg"))).status == 200
        admitted.close()
        async with asyncio.timeout(seconds(5)):
            while server.hub.subscriptions:
                await asyncio.sleep(0.05)
        assert (await MjpegStream.open(url)).status == 200


async def test_token_is_enforced_on_every_path():
    async with host_server(ListSource(JPEGS), outputs=http_outputs(), token=TOKEN) as server:
        for path in ("/stream.mjpg", "/snapshot.jpg"):
            for query in ("", "?token=", "?token=t0ken"):
                answer = await http_get(http_url(server, path) + query)
                assert answer.status == 401, (path, query)
                assert answer.body == b"Missing or wrong access token (?token=...)\n"
        good = "?token=" + quote(TOKEN, safe="")
        stream = await MjpegStream.open(http_url(server, "/stream.mjpg") + good)
        jpeg = await asyncio.wait_for(stream.next_jpeg(), seconds(5))
        stream.close()
        snapshot = await http_get(http_url(server, "/snapshot.jpg") + good)
        with pytest.raises(websockets.InvalidStatus):
            await websockets.connect(server.url)
    assert stream.status == 200 and protocol.read_tag(jpeg)
    assert snapshot.status == 200


async def test_bad_path_names_what_is_served():
    async with host_server(ListSource(JPEGS), outputs=http_outputs()) as server:
        answer = await http_get(http_url(server, "/stream.mjpeg"))
    assert answer.status == 404
    assert answer.body == (
        b"Not found. dronecam serves a WebSocket at /ws and /snapshot.jpg, /stream.mjpg\n"
    )


async def test_without_http_nothing_changes():
    async with host_server(ListSource(JPEGS)) as server:
        for path in ("/stream.mjpg", "/snapshot.jpg"):
            answer = await http_get(http_url(server, path))
            assert answer.status == 404
            assert answer.body == b"Not found. dronecam serves only a WebSocket at /ws\n"


async def test_stop_ends_the_multipart_stream_with_its_closing_boundary():
    async with host_server(ListSource(JPEGS), outputs=http_outputs()) as server:
        stream = await MjpegStream.open(http_url(server, "/stream.mjpg"))
        await asyncio.wait_for(stream.next_jpeg(), seconds(5))
    rest = await asyncio.wait_for(stream.reader.read(), seconds(5))
    stream.close()
    assert rest.endswith(b"--dronecam--\r\n")


async def test_https_stream_keeps_the_camera_rate(tmp_path):
    certfile, keyfile = self_signed_certificate(str(tmp_path))
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(certfile, keyfile)
    client_context = ssl.create_default_context(cafile=certfile)
    async with host_server(
        ListSource(JPEGS), outputs=http_outputs(), ssl_context=server_context
    ) as server:
        url = http_url(server, "/stream.mjpg")
        assert url.startswith("https://")
        stream = await MjpegStream.open(url, client_context)
        try:
            await asyncio.wait_for(stream.next_jpeg(), seconds(5))
            started = time.monotonic()
            for _ in range(60):
                jpeg = await asyncio.wait_for(stream.next_jpeg(), seconds(5))
            fps = 60 / (time.monotonic() - started)
        finally:
            stream.close()
        # PyAV (FFmpeg's TLS) reads it too, checking the certificate against our CA.
        options = {"ca_file": certfile, "tls_verify": "1"}
        _, sizes = await asyncio.to_thread(pyav_frames, url, 5, options)
        snapshot = await http_get(http_url(server, "/snapshot.jpg"), client_context)
    assert fps >= MIN_FPS, fps
    assert protocol.read_tag(jpeg)
    assert set(sizes) == {(640, 480)}
    assert snapshot.status == 200 and protocol.read_tag(snapshot.body)


def test_stream_on_uvloop():
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> list[bytes]:
        async with host_server(ListSource(JPEGS), outputs=http_outputs()) as server:
            stream = await MjpegStream.open(http_url(server, "/stream.mjpg"))
            try:
                return [await asyncio.wait_for(stream.next_jpeg(), seconds(5)) for _ in range(5)]
            finally:
                stream.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        jpegs = runner.run(scenario())
    seqs = [protocol.read_tag(jpeg)[0] for jpeg in jpegs]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
