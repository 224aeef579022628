"""outputs/websocket.py's Connection beyond the shared contract: fan-out, the viewer, timeouts."""

import asyncio

import websockets

from dronecam.client import StreamClient
from dronecam.core import protocol
from support import host_server, seconds


async def test_slow_client_skips_frames_and_never_delays_the_others():
    async with host_server(max_clients=3, send_buffer_bytes=8192) as server:
        slow = StreamClient(server.url, window=None, receive_buffer_bytes=8192)
        fast = StreamClient(server.url, window=None)
        async with slow, fast:
            counts = {"slow": 0, "fast": 0}

            async def read(client, name, delay_s):
                async for _ in client.frames():
                    counts[name] += 1
                    await asyncio.sleep(delay_s)

            tasks = [
                asyncio.create_task(read(slow, "slow", 0.2)),
                asyncio.create_task(read(fast, "fast", 0)),
            ]
            await asyncio.sleep(seconds(3))
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            slow_subscription = next(s for s in server.hub.subscriptions if s.frames_dropped)
        assert counts["fast"] >= 70, counts  # 30 fps for 3 s, whatever the slow one does
        assert counts["slow"] <= 20, counts
        assert slow_subscription.frames_dropped > 30
        assert slow.stats.dropped > 0


async def test_viewer_page_only_when_asked():
    page = b"<!doctype html><title>viewer</title>"
    async with host_server(viewer_html=page) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(65536), seconds(5))
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(page)


async def test_stream_timeout_closes_a_client_that_takes_nothing():
    async with host_server(stream_timeout_ms=500, heartbeat_interval_ms=100) as server:
        async with websockets.connect(server.url) as ws:
            await ws.send("window 1")
            # Never acknowledge: after one frame this client takes nothing more.
            async with asyncio.timeout(seconds(5)):
                try:
                    while True:
                        await ws.recv()
                except websockets.ConnectionClosed as closed:
                    assert closed.rcvd.code == protocol.CLOSE_POLICY_VIOLATION
        assert not server.hub.subscriptions
