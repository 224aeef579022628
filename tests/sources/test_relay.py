"""Relays on loopback: a chain two hops deep, latency end to end, upstream loss and return,
and an upstream that is not there yet when the relay starts."""

import asyncio
import statistics
import time

import pytest

from dronecam.client import ReceivedFrame, ServerMessage, StreamClient
from dronecam.core.protocol import read_tags, strip_tags
from dronecam.core.source import FeedSettings, SourceError
from dronecam.server import ServerSettings, running_server
from dronecam.sources import make_source
from dronecam.sources.relay import RelaySource
from support import ListSource, free_port, host_server, seconds

FAST_RETRY = FeedSettings(retry_min_ms=50, retry_max_ms=200)


def _clock_offset_us(reference, other) -> int:
    """`reference`'s clock minus `other`'s: both are read within microseconds of each other."""
    before = reference.clock.now_us()
    middle = other.clock.now_us()
    after = reference.clock.now_us()
    return (before + after) // 2 - middle


async def test_two_relays_deep_frames_arrive_unchanged_with_every_hop_tagged(jpegs):
    async with (
        host_server(ListSource(jpegs, fps=30)) as origin,
        host_server(make_source(origin.url), max_clients=50) as relay1,
        host_server(make_source(relay1.url), max_clients=50) as relay2,
        StreamClient(relay2.url) as client,
    ):
        offsets = [0, _clock_offset_us(origin, relay1), _clock_offset_us(origin, relay2)]
        frames = client.frames()
        latencies_ms = []
        for _ in range(20):
            frame = await asyncio.wait_for(anext(frames), seconds(5))
            received_us = origin.clock.now_us()
            assert strip_tags(frame.jpeg) in jpegs  # the camera's bytes, untouched by 2 hops
            tags = read_tags(frame.jpeg)
            assert len(tags) == 3  # relay2, relay1, origin: nearest first
            times_us = [
                capture_us + offset
                for (_, capture_us), offset in zip(reversed(tags), offsets, strict=True)
            ]
            # Each hop stamps the frame after the one before it, and before it is received.
            assert times_us == sorted(times_us) and times_us[-1] <= received_us
            latencies_ms.append((received_us - times_us[0]) / 1000)
        assert client.welcome["source"] == "relay:%s" % relay1.url
    print("end-to-end latency over 2 relays: median %.2f ms" % statistics.median(latencies_ms))


async def test_a_relay_reports_a_lost_upstream_and_recovers_when_it_returns(jpegs):
    async with host_server(ListSource(jpegs, fps=30)) as origin:
        port = origin.port
        url = origin.url
        relay_server = host_server(
            RelaySource(url, open_timeout_s=seconds(1)),
            feed_settings=FAST_RETRY,
            heartbeat_interval_ms=100,
        )
        async with relay_server as relay, StreamClient(relay.url) as client:
            items = aiter(client)

            async def next_heartbeat(camera: str) -> dict:
                while True:
                    item = await asyncio.wait_for(anext(items), seconds(5))
                    if isinstance(item, ServerMessage) and item.type == "heartbeat":
                        if item.data["camera"] == camera:
                            return item.data

            await next_heartbeat("ok")
            await origin.stop()
            lost = await next_heartbeat("waiting")
            assert lost["camera_error"].startswith("upstream %s" % url)
            async with host_server(ListSource(jpegs, fps=30), port=port):
                await next_heartbeat("ok")
                while not isinstance(item := await anext(items), ReceivedFrame):
                    pass
                assert strip_tags(item.jpeg) in jpegs
            assert relay.feed.restarts == 0  # it waited for the upstream; nothing to re-open


async def test_a_relay_started_before_its_upstream_waits_for_it_then_streams(jpegs):
    # A companion computer boots before the drone's WiFi is up: the relay must not exit.
    port = free_port()
    upstream = "ws://127.0.0.1:%d/ws" % port
    logged: list[str] = []
    settings = ServerSettings(host="127.0.0.1", port=0, heartbeat_interval_ms=100)
    source = RelaySource(upstream, open_timeout_s=seconds(1))
    async with (
        running_server(source, settings, log=logged.append) as relay,
        StreamClient(relay.url) as client,
    ):
        items = aiter(client)
        waiting = []
        async with asyncio.timeout(seconds(10)):
            while len(waiting) < 15:  # 1.5 s of heartbeats: several tries with backoff
                item = await anext(items)
                assert not isinstance(item, ReceivedFrame)
                if item.type == "heartbeat" and item.data["camera"] == "waiting":
                    waiting.append(item.data)
        assert client.welcome["type"] == "welcome"
        assert "cannot reach %s" % upstream in waiting[-1]["camera_error"]
        assert [line for line in logged if "waiting" in line] == [
            "[Camera] waiting: %s" % waiting[0]["camera_error"]
        ]  # once, not once per try
        async with host_server(ListSource(jpegs, fps=30), port=port):
            async with asyncio.timeout(seconds(5)):  # the relay retries every 2 s at most
                while not isinstance(await anext(items), ReceivedFrame):
                    pass
            frames = 0
            started = time.monotonic()
            async with asyncio.timeout(seconds(10)):
                while time.monotonic() - started < 2:
                    frames += isinstance(await anext(items), ReceivedFrame)
            fps = frames / (time.monotonic() - started)
    assert fps > 24, "%.1f fps through the relay" % fps
    assert len([line for line in logged if "waiting" in line]) == 1
    assert [line for line in logged if "streaming" in line] == [
        "[Camera] streaming (relay:%s)" % upstream
    ]
    print("relay: %.1f fps once its upstream came up" % fps)


def test_a_relay_url_that_cannot_be_one_is_refused_at_once():
    with pytest.raises(SourceError, match="port must be from 1 to 65535"):
        make_source("ws://127.0.0.1:70000/ws")
