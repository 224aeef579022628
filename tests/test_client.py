"""client.py against real servers: latency, gaps, credit flow, reconnects, clear errors."""

import asyncio

import pytest

from dronecam.client import ReceivedFrame, StreamClient, StreamError, snapshot, stream_url
from dronecam.core import protocol
from support import host_server, seconds


async def _take(client: StreamClient, count: int) -> list[ReceivedFrame]:
    frames = []
    async with asyncio.timeout(seconds(10)):
        async for frame in client.frames():
            frames.append(frame)
            if len(frames) == count:
                return frames
    return frames


async def test_frames_carry_seq_latency_and_no_gaps():
    async with host_server() as server, StreamClient(server.url) as client:
        frames = await _take(client, 40)
    assert [f.seq for f in frames] == list(range(frames[0].seq, frames[0].seq + 40))
    assert all(f.gap == 0 for f in frames)
    measured = [f.latency_ms for f in frames if f.latency_ms is not None]
    assert measured and all(-5 < latency < 500 for latency in measured)
    assert client.clock_offset_us is not None
    assert client.welcome["type"] == "welcome"


async def test_credit_flow_keeps_a_slow_consumer_live():
    async with host_server() as server, StreamClient(server.url, window=1) as client:
        seen = []
        async with asyncio.timeout(seconds(10)):
            async for frame in client.frames():
                seen.append(frame)
                if len(seen) == 6:
                    break
                await asyncio.sleep(0.2)  # a consumer at 5 fps
    # It skips frames (gaps) rather than falling behind: every frame it sees is fresh.
    assert sum(frame.gap for frame in seen[1:]) >= 10
    # Without credit flow this consumer would fall seconds behind (BENCHMARKS.md).
    assert max(frame.latency_ms for frame in seen[2:]) < 500


async def test_reconnects_after_the_server_restarts():
    async with host_server() as server:
        port = server.port
        client = StreamClient(server.url, reconnect=True, backoff_min_s=0.1)
        await client.connect()
        await _take(client, 3)
    events = []
    async with host_server(port=port):
        async with asyncio.timeout(seconds(10)):
            async for item in client:
                if isinstance(item, ReceivedFrame):
                    if "connected" in events:
                        break
                else:
                    events.append(item.type)
    await client.close()
    assert "disconnected" in events and "connected" in events
    assert client.stats.reconnects == 1


async def test_full_server_is_a_clear_error():
    async with host_server(max_clients=1) as server, StreamClient(server.url) as first:
        await _take(first, 1)
        with pytest.raises(StreamError, match="server full"):
            async with StreamClient(server.url) as second:
                await _take(second, 1)


async def test_requests_while_streaming():
    async with host_server() as server, StreamClient(server.url) as client:
        reader = asyncio.create_task(_take(client, 1000))
        stats = await client.get_stats()
        round_trip_s = await client.ping()
        reader.cancel()
    assert stats["type"] == "stats" and stats["clients"] == 1 and stats["window"] == 2
    assert 0 < round_trip_s < seconds(5)


async def test_snapshot_and_bad_urls():
    async with host_server() as server:
        jpeg = await snapshot(server.url)
    assert protocol.read_tag(jpeg) is not None
    with pytest.raises(StreamError, match="not a WebSocket URL"):
        await snapshot("ftp://127.0.0.1/ws")
    with pytest.raises(StreamError, match="cannot reach") as error:
        await snapshot("ws://127.0.0.1:9/ws?token=secret")
    assert "secret" not in str(error.value)


async def test_the_first_frame_has_its_latency_too():
    for _ in range(3):  # every connection, not only a lucky one
        async with host_server() as server, StreamClient(server.url) as client:
            frames = client.frames()
            first = await asyncio.wait_for(anext(frames), seconds(5))
            assert first.latency_ms is not None and -5 < first.latency_ms < 500


async def test_latency_stays_right_after_a_restart_with_another_clock():
    async with host_server() as server:
        port = server.port
        client = StreamClient(server.url, reconnect=True, backoff_min_s=0.1)
        await client.connect()
        await _take(client, 3)
    await asyncio.sleep(0.5)  # the new server's clock starts later: an offset 0.5 s apart
    async with host_server(port=port):
        frames = await _take(client, 10)
    await client.close()
    assert client.stats.reconnects == 1
    assert all(-5 < frame.latency_ms < 500 for frame in frames), [f.latency_ms for f in frames]


@pytest.mark.parametrize(
    ("typed", "url"),
    [
        ("192.168.4.1", "ws://192.168.4.1/ws"),
        ("localhost:8080", "ws://localhost:8080/ws"),
        ("ws://host", "ws://host/ws"),
        ("http://host:8080/ws?token=t", "ws://host:8080/ws?token=t"),
        ("https://host/", "wss://host/ws"),
        ("ws://host:8080/other", "ws://host:8080/other"),
    ],
)
def test_urls_are_taken_as_the_viewer_takes_them(typed, url):
    assert stream_url(typed) == url


@pytest.mark.parametrize("typed", ["", "ftp://host/ws", "ws://host:70000/ws", "ws:///ws"])
def test_what_cannot_be_a_stream_url_says_what_to_type(typed):
    with pytest.raises(StreamError, match="ws://HOST:PORT/ws"):
        stream_url(typed)
