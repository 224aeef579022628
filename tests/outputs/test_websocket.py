"""outputs/websocket.py's Connection beyond the shared contract: fan-out, the viewer, timeouts."""

import asyncio
import gc
import time

import pytest
import websockets

from dronecam.client import StreamClient
from dronecam.core import protocol
from dronecam.outputs.websocket import CLOSE_TIMEOUT_MS
from support import ListSource, host_server, seconds, synthetic_jpegs
from support_hardening import MIN_FPS, RawClient, Watcher, process_resources, shared_tls


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


@pytest.mark.parametrize("tls", [False, True], ids=["ws", "wss"])
async def test_refused_clients_that_never_answer_the_close_are_dropped(tls):
    """server_full, then a close frame nobody reads or answers: gone within the close timeout."""
    source = ListSource(synthetic_jpegs(30, 320, 240), fps=30)
    context = shared_tls().server if tls else None
    async with host_server(
        source, max_clients=1, heartbeat_interval_ms=100, ssl_context=context
    ) as server:
        async with Watcher(server.url) as watcher:
            gc.collect()
            baseline = process_resources()["fds"]
            refused = []
            for _ in range(50):
                client = await RawClient.open(server.url)
                assert (await client.handshake())[0] == 101
                client.stop_reading()
                refused.append(client)
            assert len(server.connections) > 1
            start = time.monotonic()
            fps = await watcher.fps(CLOSE_TIMEOUT_MS / 1000 + seconds(1))
            while len(server.connections) > 1:
                assert time.monotonic() - start < seconds(5), len(server.connections)
                await asyncio.sleep(0.05)
            dropped_s = time.monotonic() - start
            for client in refused:
                client.close()
            await asyncio.sleep(0.1)
            gc.collect()
            assert process_resources()["fds"] == baseline
    assert dropped_s < CLOSE_TIMEOUT_MS / 1000 + seconds(1.5), dropped_s
    assert fps >= MIN_FPS, fps
