"""Camera faults: bad frames are never sent, clients stay connected and see the camera state."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import pytest
import simplejpeg
import websockets

from dronecam.core import protocol
from dronecam.core.hub import Hub
from dronecam.core.source import Feed, FeedSettings
from support import host_server, seconds, synthetic_jpegs

GOOD = synthetic_jpegs(10, 320, 240)
FEED_SETTINGS = dict(
    stall_timeout_ms=300, bad_frames_before_restart=3, retry_min_ms=100, retry_max_ms=800
)


class FaultyCamera:
    """A stand-in camera whose fault the test switches on and off, like a flaky OV2640.

    Modes: ok, raise (read and open fail: unplugged), stall (read never returns),
    truncated, corrupt, oversized (read returns that kind of bad JPEG), flaky (every
    third frame truncated).
    """

    name = "faulty"

    def __init__(self, fps: float = 30) -> None:
        self.fps = fps
        self.mode = "ok"
        self.count = 0
        self.opened_at: list[float] = []
        self.closed = 0

    async def open(self) -> None:
        self.opened_at.append(time.monotonic())
        if self.mode == "raise":
            raise OSError("camera not found on the bus")

    async def read(self) -> bytes:
        await asyncio.sleep(1 / self.fps)
        self.count += 1
        jpeg = GOOD[self.count % len(GOOD)]
        mode = self.mode
        if mode == "flaky":
            mode = "truncated" if self.count % 3 == 0 else "ok"
        if mode == "raise":
            raise OSError("frame buffer overflow")
        if mode == "stall":
            await asyncio.Event().wait()
        if mode == "truncated":
            return jpeg[: len(jpeg) // 2]
        if mode == "corrupt":
            return b"\x00\x00" + jpeg[2:]
        if mode == "oversized":
            return jpeg[:-2] + bytes(protocol.MAX_FRAME_SIZE) + protocol.EOI
        return jpeg

    async def close(self) -> None:
        self.closed += 1


VIEWERS: list[Viewer] = []


@pytest.fixture(autouse=True)
async def stop_viewers():
    yield
    for viewer in VIEWERS:
        viewer.task.cancel()
        await asyncio.gather(viewer.task, return_exceptions=True)
    VIEWERS.clear()


class Viewer:
    """A client that records every frame and heartbeat until the test ends."""

    def __init__(self, ws) -> None:
        self.ws = ws
        VIEWERS.append(self)
        self.frames: list[bytes] = []
        self.heartbeats: list[dict] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for message in self.ws:
            if isinstance(message, bytes):
                self.frames.append(message)
            else:
                data = json.loads(message)
                if data.get("type") == "heartbeat":
                    self.heartbeats.append(data)

    async def until(self, predicate, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            assert not self.task.done(), "the viewer was disconnected"
            assert time.monotonic() < deadline, (self.heartbeats[-1:], len(self.frames))
            await asyncio.sleep(0.02)

    def camera(self) -> str:
        return self.heartbeats[-1]["camera"] if self.heartbeats else ""


def sendable(frame: bytes) -> bool:
    """A frame the contract allows: a decodable JPEG of at most MAX_FRAME_SIZE, with our tag."""
    if protocol.check_jpeg(frame) is not None or protocol.read_tag(frame) is None:
        return False
    simplejpeg.decode_jpeg_header(frame)
    return True


FAULTS = {
    "raise": "failed",
    "stall": "stalled",
    "truncated": "failed",
    "corrupt": "failed",
    "oversized": "failed",
}


@pytest.mark.parametrize("fault, state", FAULTS.items(), ids=FAULTS.keys())
async def test_camera_fault_is_reported_retried_and_recovered(fault, state):
    camera = FaultyCamera()
    async with (
        host_server(camera, FeedSettings(**FEED_SETTINGS), heartbeat_interval_ms=100) as server,
        websockets.connect(server.url) as ws,
    ):
        viewer = Viewer(ws)
        await viewer.until(lambda: len(viewer.frames) >= 3, seconds(5))
        camera.mode = fault
        opens_before = len(camera.opened_at)
        await viewer.until(lambda: viewer.camera() == state, seconds(5))
        assert viewer.heartbeats[-1]["camera_error"]
        await ws.send(protocol.GET_STATS)
        await viewer.until(lambda: len(camera.opened_at) >= opens_before + 4, seconds(10))
        frames_in_fault = len(viewer.frames)
        opens = camera.opened_at[-4:]
        gaps = [later - earlier for earlier, later in itertools.pairwise(opens)]
        # Backoff 200, 400, 800 ms (or 400, 800, 800): the wait grows by far more than the
        # stall watchdog's polling can blur.
        assert gaps[2] - gaps[0] > 0.2, "no backoff between re-opens: %s" % gaps

        camera.mode = "ok"
        await viewer.until(lambda: len(viewer.frames) >= frames_in_fault + 3, seconds(5))
        await viewer.until(lambda: viewer.camera() == "ok", seconds(5))
        assert "camera_error" not in viewer.heartbeats[-1]
        assert viewer.heartbeats[-1]["camera_restarts"] >= 3
        assert all(sendable(frame) for frame in viewer.frames)
        assert not viewer.task.done()


async def test_stats_carry_the_camera_state():
    camera = FaultyCamera()
    async with (
        host_server(camera, FeedSettings(**FEED_SETTINGS)) as server,
        websockets.connect(server.url) as ws,
    ):
        camera.mode = "stall"
        deadline = time.monotonic() + seconds(5)
        while True:
            await ws.send(protocol.GET_STATS)
            stats = await next_stats(ws)
            if stats["camera"] == "stalled" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert stats["camera"] == "stalled"
        assert "no frame" in stats["camera_error"]


async def next_stats(ws) -> dict:
    while True:
        message = await asyncio.wait_for(ws.recv(), seconds(5))
        if isinstance(message, str) and '"stats"' in message:
            return json.loads(message)


async def test_occasional_bad_frames_are_dropped_without_a_restart():
    camera = FaultyCamera()
    camera.mode = "flaky"
    async with (
        host_server(camera, FeedSettings(**FEED_SETTINGS), heartbeat_interval_ms=100) as server,
        websockets.connect(server.url) as ws,
    ):
        viewer = Viewer(ws)
        await viewer.until(lambda: len(viewer.frames) >= 20, seconds(5))
        await viewer.until(lambda: viewer.heartbeats[-1:] != [], seconds(5))
        heartbeat = viewer.heartbeats[-1]
        assert heartbeat["camera"] == "ok"
        assert heartbeat["frames_rejected"] >= 5
        assert heartbeat["camera_restarts"] == 0
        assert len(camera.opened_at) == 1
        assert all(sendable(frame) for frame in viewer.frames)


async def test_backoff_starts_over_after_the_camera_recovered():
    camera = FaultyCamera()
    settings = FeedSettings(stall_timeout_ms=300, retry_min_ms=50, retry_max_ms=3200)
    feed = Feed(camera, Hub(), settings, log=lambda message: None)
    await feed.open()
    running = asyncio.create_task(feed.run())
    try:
        camera.mode = "raise"
        await until(lambda: len(camera.opened_at) >= 6, seconds(10))
        grown_gap = camera.opened_at[-1] - camera.opened_at[-2]
        camera.mode = "ok"
        await until(lambda: feed.state == protocol.CAMERA_OK, seconds(10))
        await asyncio.sleep(0.2)
        camera.mode = "raise"
        fault_at = time.monotonic()
        opens = len(camera.opened_at)
        await until(lambda: len(camera.opened_at) > opens, seconds(10))
        assert camera.opened_at[-1] - fault_at < grown_gap / 2
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def until(predicate, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
