"""The wire contract of docs/protocol.md, with real clients, against every server."""

import asyncio
import json
import threading

import cv2
import numpy as np
import pytest
import websocket  # websocket-client: the original README's own Python client
import websockets
from wire import frames_during, next_frames, next_json, next_plain_text

from dronecam.core import protocol
from support import seconds


async def test_welcome_comes_first(start_server):
    async with start_server() as server, websockets.connect(server.url) as ws:
        welcome = json.loads(await asyncio.wait_for(ws.recv(), seconds(5)))
        assert welcome["type"] == "welcome"
        assert welcome["message"] == "Connected to 30fps drone camera stream"


async def test_frames_are_tagged_jpegs_in_order(start_server):
    async with start_server() as server, websockets.connect(server.url) as ws:
        frames = await next_frames(ws, 10)
    tags = [protocol.read_tag(frame) for frame in frames]
    assert all(tag is not None for tag in tags)
    seqs = [tag[0] for tag in tags]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    captures = [tag[1] for tag in tags]
    assert captures == sorted(captures)
    for frame in frames:
        assert len(frame) <= protocol.MAX_FRAME_SIZE
        image = cv2.imdecode(np.frombuffer(frame, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (480, 640, 3)


async def test_ping_answers_pong(start_server):
    async with start_server() as server, websockets.connect(server.url) as ws:
        await ws.send("ping")
        assert await next_plain_text(ws) == "pong"


async def test_get_stats_has_the_contract_fields(start_server):
    async with start_server() as server, websockets.connect(server.url) as ws:
        await next_frames(ws, 3)
        await ws.send("get_stats")
        stats = await next_json(ws, "stats")
    assert stats["clients"] == 1
    assert isinstance(stats["fps"], (int, float))
    assert stats["frames"] >= 3


async def test_heartbeat_within_two_seconds(start_server):
    async with start_server() as server, websockets.connect(server.url) as ws:
        heartbeat = await next_json(ws, "heartbeat", timeout_s=2.5)
    assert heartbeat["clients"] == 1
    assert isinstance(heartbeat["fps"], (int, float))


@pytest.mark.parametrize("command", ["hello", "", "PING", "get_stats now", "window 999", "ack x"])
async def test_bad_commands_get_an_error_and_the_stream_goes_on(start_server, command):
    async with start_server() as server, websockets.connect(server.url) as ws:
        await ws.send(command)
        error = await next_json(ws, "error")
        assert error["error"] and error["message"]
        await next_frames(ws, 3)
        await ws.send("ping")
        assert await next_plain_text(ws) == "pong"


async def test_binary_from_a_client_gets_an_error(start_server):
    async with start_server() as server, websockets.connect(server.url) as ws:
        await ws.send(b"\x00\x01")
        error = await next_json(ws, "error")
        assert error["error"] == "binary_not_supported"
        await next_frames(ws, 2)


async def test_extra_client_is_refused_and_the_others_stream_on(start_server):
    async with start_server(max_clients=2) as server:
        # max_queue=None: these two keep reading while the third is refused, so their own
        # close handshake at the end is not stuck behind frames they left unread.
        async with (
            websockets.connect(server.url, max_queue=None) as first,
            websockets.connect(server.url, max_queue=None) as second,
        ):
            await next_frames(first, 2)
            await next_frames(second, 2)
            async with websockets.connect(server.url) as third:
                error = await next_json(third, "error")
                assert error["error"] == "server_full"
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(third.recv(), seconds(5))
                assert closed.value.rcvd.code == protocol.CLOSE_TRY_AGAIN_LATER
            assert await frames_during(first, 1.0) >= 20
            assert await frames_during(second, 1.0) >= 20


async def test_clock_and_credit_window(start_server):
    async with start_server() as server, websockets.connect(server.url) as ws:
        await ws.send("clock")
        clock = await next_json(ws, "clock")
        assert clock["server_us"] > 0
        await ws.send("window 1")
        assert (await next_json(ws, "window"))["window"] == 1
        # Without acknowledgements at most one frame may come after the window reply.
        assert await frames_during(ws, 0.6) <= 1
        await ws.send("ack")
        assert len(await next_frames(ws, 1, timeout_s=2)) == 1
        await ws.send("window 0")
        await next_json(ws, "window")
        assert await frames_during(ws, 1.0) >= 20


async def test_the_original_python_client_works(start_server):
    """The seed README's client: websocket-client's WebSocketApp and cv2.imdecode."""
    async with start_server() as server:
        images: list = []
        texts: list[str] = []

        def on_message(ws, message):
            if isinstance(message, bytes):
                images.append(cv2.imdecode(np.frombuffer(message, np.uint8), cv2.IMREAD_COLOR))
                if len(images) >= 5:
                    ws.close()
            else:
                texts.append(message)

        app = websocket.WebSocketApp(server.url, on_message=on_message)
        thread = threading.Thread(target=app.run_forever, daemon=True)
        thread.start()
        for _ in range(int(seconds(10) * 10)):
            if not thread.is_alive():
                break
            await asyncio.sleep(0.1)
        app.close()
    assert len(images) >= 5 and all(image.shape == (480, 640, 3) for image in images)
    assert json.loads(texts[0])["type"] == "welcome"
