"""Relays on loopback: a chain two hops deep, latency end to end, upstream loss and return."""

import asyncio
import socket
import statistics

import pytest

from dronecam.client import ReceivedFrame, ServerMessage, StreamClient
from dronecam.core.protocol import read_tags, strip_tags
from dronecam.core.source import FeedSettings, SourceError
from dronecam.sources import make_source
from dronecam.sources.relay import RelaySource
from support import ListSource, host_server, seconds

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
            lost = await next_heartbeat("failed")
            assert "upstream" in lost["camera_error"] or "cannot reach" in lost["camera_error"]
            async with host_server(ListSource(jpegs, fps=30), port=port):
                await next_heartbeat("ok")
                while not isinstance(item := await anext(items), ReceivedFrame):
                    pass
                assert strip_tags(item.jpeg) in jpegs
            assert relay.feed.restarts >= 1


async def test_a_relay_url_that_does_not_answer_is_a_clear_error():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    relay = make_source("ws://127.0.0.1:%d/ws" % port)
    with pytest.raises(SourceError, match=r"cannot reach ws://127\.0\.0\.1"):
        await relay.open()
