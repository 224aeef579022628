"""Faults against real nats-server processes: a node killed, NATS gone, foreign messages."""

import asyncio
import time

import pytest

from dronecam.client import StreamClient
from dronecam.core.protocol import read_tags
from dronecam.core.source import FeedSettings
from dronecam.server import ServerSettings, build_server
from dronecam.sources.nats import NatsSource
from dronecam.tools.natsd import NatsServer, free_port
from support import seconds, synthetic_jpegs
from support_nats import edge, frame_rate, next_frame, next_heartbeat, origin, publisher_of

RECOVERY_S = 2.0


async def _gap_after(kill, client: StreamClient, watch_s: float = 3) -> float:
    """The longest wait between two frames the client gets around `kill()`, in seconds."""
    await next_frame(client)
    last = time.monotonic()
    kill()
    longest = 0.0
    end = last + seconds(watch_s)
    while last < end:
        await next_frame(client, timeout_s=10)
        now = time.monotonic()
        longest, last = max(longest, now - last), now
    return longest


def _port_of(link) -> int:
    """The port of the NATS node a publisher or an edge source is connected to now."""
    return link._client.connected_url.port


@pytest.mark.parametrize("victim", ["edge's node", "publisher's node"])
async def test_killing_a_node_costs_the_edge_viewers_under_two_seconds(cluster, victim):
    camera_node, edge_node, _ = cluster
    async with (
        origin(camera_node.url) as camera,
        edge(edge_node.url + "/cam1") as relay,
        StreamClient(relay.url) as first,
        StreamClient(relay.url) as second,
    ):
        await next_frame(second)
        node = edge_node if victim == "edge's node" else camera_node
        links = {"edge's node": relay.feed.source, "publisher's node": publisher_of(camera)}
        assert _port_of(links[victim]) == node.port
        gap_s = await _gap_after(node.stop, first)
        print("longest wait for a frame: %.0f ms with the %s killed" % (gap_s * 1000, victim))
        assert gap_s < seconds(RECOVERY_S)
        assert _port_of(links[victim]) != node.port  # it moved to another node
        await next_frame(second)  # both viewers stayed connected
        assert await frame_rate(first, seconds(1)) >= 20
        if victim == "publisher's node":
            assert publisher_of(camera).state == "connected"
        assert relay.hub.clients == 2
        assert first.stats.reconnects == second.stats.reconnects == 0


async def test_with_nats_gone_local_viewers_keep_full_rate_and_publishing_resumes(tmp_path):
    nats = NatsServer().start()
    try:
        async with (
            origin(nats.url) as camera,
            StreamClient(camera.url) as viewer,
        ):
            assert await frame_rate(viewer, seconds(1)) >= 25
            publisher = publisher_of(camera)
            nats.stop()
            assert await frame_rate(viewer, seconds(2)) >= 25  # the viewers never notice
            beat = await next_heartbeat(viewer, nats="reconnecting")
            assert beat["clients"] == 1
            published = publisher.status()["nats_published"]
            skipped = publisher.status()["nats_skipped"]
            await asyncio.sleep(0.5)
            assert publisher.status()["nats_published"] == published  # nothing queued up
            assert publisher.status()["nats_skipped"] >= skipped + 10
            nats = NatsServer(port=nats.port).start()
            async with edge(nats.url + "/cam1") as relay, StreamClient(relay.url) as remote:
                frame = await next_frame(remote, timeout_s=5)
                assert len(read_tags(frame.jpeg)) == 2
                assert await frame_rate(remote, seconds(1)) >= 20
            assert (await next_heartbeat(viewer, nats="connected"))["clients"] == 1
    finally:
        nats.stop()


async def test_foreign_messages_on_a_frames_subject_are_counted_and_never_served(nats_server):
    import nats

    plain_jpeg = synthetic_jpegs(1)[0]  # a JPEG, but without a dronecam tag
    async with edge(nats_server.url + "/cam1") as relay, StreamClient(relay.url) as client:
        intruder = await nats.connect(nats_server.url)
        try:
            for payload in (b"hello", plain_jpeg, b"\xff\xd8" + b"\x00" * 64):
                await intruder.publish("dronecam.cam1.frames", payload)
                await intruder.flush()
            beat = await next_heartbeat(client, upstream_foreign=3)
            assert beat["frames"] == 0
            with pytest.raises(TimeoutError):
                await next_frame(client, timeout_s=0.5)
            async with origin(nats_server.url):
                frame = await next_frame(client)  # the real camera still comes through
                assert len(read_tags(frame.jpeg)) == 2
        finally:
            await intruder.close()


async def test_an_edge_started_before_nats_waits_says_so_once_and_streams_when_it_comes():
    port = free_port()
    lines: list[str] = []
    source = NatsSource("nats://127.0.0.1:%d/cam1" % port, open_timeout_s=seconds(1))
    feed_settings = FeedSettings(retry_min_ms=50, retry_max_ms=250)
    server = build_server(
        source, ServerSettings(host="127.0.0.1", port=0, heartbeat_interval_ms=200),
        feed_settings, log=lines.append,
    )  # fmt: skip
    await server.feed.open()
    await server.start()
    try:
        async with StreamClient(server.url) as client:
            beat = await next_heartbeat(client, camera="waiting")
            assert "cannot reach NATS at nats://127.0.0.1:%d" % port in beat["camera_error"]
            await asyncio.sleep(1.5)  # several of nats-py's tries
            nats = NatsServer(port=port).start()
            try:
                async with origin(nats.url):
                    frame = await next_frame(client, timeout_s=5)
                    assert len(read_tags(frame.jpeg)) == 2
                    assert await frame_rate(client, seconds(1)) >= 20
            finally:
                nats.stop()
            beat = await next_heartbeat(client, camera="waiting")  # NATS gone again: waiting
    finally:
        await server.stop()
    waits = [line for line in lines if line.startswith("[Camera] waiting")]
    assert waits[0].startswith("[Camera] waiting: connecting to NATS") or "cannot reach" in waits[0]
    assert len(waits) <= 3, lines  # once on the way in, once per change of reason: not per try
    assert server.feed.restarts == 0  # waited for, never restarted


async def test_a_flood_of_frames_never_makes_the_edge_a_slow_consumer():
    import json
    import urllib.request

    import nats

    from dronecam.core.protocol import tag_jpeg

    # A small outbound buffer per client: a consumer that does not read is cut off quickly.
    tight = NatsServer(config='max_pending: 1MB\nwrite_deadline: "1s"').start()
    try:
        jpeg = bytes(tag_jpeg(synthetic_jpegs(1)[0], 1, 1))
        async with edge(tight.url + "/cam1") as relay, StreamClient(relay.url) as client:
            await next_heartbeat(client, upstream="connected")
            flood = await nats.connect(tight.url, pending_size=64 * 1024 * 1024)
            try:
                sent, end = 0, time.monotonic() + seconds(3)
                while time.monotonic() < end:  # as fast as this process can publish
                    for _ in range(50):
                        await flood.publish("dronecam.cam1.frames", jpeg)
                    sent += 50
                    await flood.flush()
            finally:
                await flood.close()
            beat = await next_heartbeat(client, upstream="connected")
            with urllib.request.urlopen(
                "http://127.0.0.1:%d/varz" % tight.monitor_port, timeout=5
            ) as answer:
                varz = json.load(answer)
            source = relay.feed.source
            print(
                "flood: %d frames in 3 s (%.0f MB/s) to an edge with 1 MB max_pending: "
                "%d taken, %d dropped in nats-py's queue, %d served"
                % (sent, sent * len(jpeg) / 3e6, source.received, source.skipped, beat["frames"])
            )
            assert varz["slow_consumers"] == 0  # never cut off: it read everything promptly
            assert varz["out_msgs"] >= sent
            assert source.state == "connected" and client.stats.reconnects == 0
            assert source.received + source.skipped >= 0.9 * sent  # each one taken or counted
            assert beat["frames"] > 0
    finally:
        tight.stop()
