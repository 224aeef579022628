"""core/source.py: the feed publishes good frames and recovers a failing camera."""

import asyncio

from dronecam.core import protocol
from dronecam.core.hub import Hub
from dronecam.core.source import Feed, FeedSettings, Pacer
from support import ListSource, seconds, synthetic_jpegs


async def _run_until(feed: Feed, condition, timeout_s: float = 5) -> None:
    task = asyncio.create_task(feed.run())
    try:
        async with asyncio.timeout(seconds(timeout_s)):
            while not condition():
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_feed_publishes_tagged_frames_in_sequence():
    jpegs = synthetic_jpegs(3, 160, 128)
    hub = Hub()
    feed = Feed(ListSource(jpegs, fps=200), hub, log=lambda _: None)
    await _run_until(feed, lambda: hub.frames_published >= 5)
    assert feed.state == protocol.CAMERA_OK
    assert protocol.read_tag(hub.latest.jpeg())[0] == hub.latest.seq


async def test_feed_reopens_a_camera_that_raises():
    jpegs = synthetic_jpegs(2, 160, 128)
    source = ListSource(
        [jpegs[0], OSError("camera unplugged"), jpegs[1], jpegs[1]], fps=200, loop=False
    )
    hub = Hub()
    logged = []
    feed = Feed(source, hub, FeedSettings(retry_min_ms=10), log=logged.append)
    await _run_until(feed, lambda: feed.restarts >= 1 and hub.frames_published >= 3)
    assert source.opened >= 2 and source.closed >= 1
    assert any("camera unplugged" in line for line in logged)
    assert feed.state == protocol.CAMERA_OK


async def test_feed_reports_a_stalled_camera():
    jpegs = synthetic_jpegs(1, 160, 128)
    source = ListSource(jpegs, fps=200, loop=False)
    feed = Feed(
        source, Hub(), FeedSettings(stall_timeout_ms=100, retry_min_ms=1000), log=lambda _: None
    )
    await _run_until(feed, lambda: feed.state == protocol.CAMERA_STALLED)
    status = feed.status()
    assert status["camera"] == "stalled" and "no frame" in status["camera_error"]


async def test_feed_restarts_after_bad_frames_in_a_row():
    source = ListSource([b"\xff\xd8broken"], fps=500)
    feed = Feed(
        source,
        Hub(),
        FeedSettings(bad_frames_before_restart=3, retry_min_ms=10),
        log=lambda _: None,
    )
    await _run_until(feed, lambda: feed.restarts >= 2)
    assert feed.frames_rejected >= 6
    assert feed.state == protocol.CAMERA_FAILED and "truncated" in feed.last_error


async def test_pacer_keeps_the_rate_without_drift():
    pacer = Pacer(100)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(20):
        await pacer.wait()
    elapsed = loop.time() - start
    assert elapsed >= 0.19  # never early; late only by scheduling noise


async def test_an_oversized_frame_names_the_option_that_raises_the_limit():
    big = synthetic_jpegs(1, 1280, 720)[0]
    feed = Feed(
        ListSource([big], fps=500),
        Hub(),
        FeedSettings(max_frame_bytes=len(big) - 1, bad_frames_before_restart=2, retry_min_ms=10),
        log=lambda _: None,
    )
    await _run_until(feed, lambda: feed.restarts >= 1)
    assert (
        "oversized frame (%d bytes > %d; raise --max-frame-bytes)"
        % (
            len(big),
            len(big) - 1,
        )
        in feed.status()["camera_error"]
    )


async def test_the_automatic_frame_limit_follows_the_source_and_is_logged_once():
    source = ListSource(synthetic_jpegs(2, 1280, 720), fps=200)
    source.width, source.height = 1280, 720
    logged: list[str] = []
    hub = Hub()
    feed = Feed(source, hub, FeedSettings(max_frame_bytes=None), log=logged.append)
    await _run_until(feed, lambda: hub.frames_published >= 10)
    limit = protocol.frame_bytes_limit(1280, 720)
    assert limit == 300000
    assert [line for line in logged if "frames up to" in line] == [
        "[Camera] frames up to 300000 bytes at 1280x720 (--max-frame-bytes to change)"
    ]


async def test_a_source_that_waits_for_its_input_is_not_stalled():
    class Upstream(ListSource):
        waiting = "upstream ws://drone/ws: cannot reach it; retrying"

        async def read(self) -> bytes:
            await asyncio.Event().wait()
            return b""

    logged: list[str] = []
    feed = Feed(Upstream([]), Hub(), FeedSettings(stall_timeout_ms=100), log=logged.append)
    await _run_until(feed, lambda: feed.state == protocol.CAMERA_WAITING)
    await asyncio.sleep(0.5)  # five stall timeouts: still waiting, not stalled, logged once
    assert feed.status()["camera"] == "waiting" and feed.restarts == 0
    assert feed.status()["camera_error"] == Upstream.waiting
    assert logged == ["[Camera] waiting: " + Upstream.waiting]
