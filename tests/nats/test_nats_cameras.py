"""An edge of every camera (`nats://HOST:PORT/*`): /ws?camera=NAME, plain /ws, the list."""

import asyncio
import contextlib
import json

import websocket  # the seed's own client library: websocket-client

from dronecam.client import StreamClient
from dronecam.core.protocol import strip_tags
from support import seconds, synthetic_jpegs
from support_nats import fleet_edge, frame_rate, next_frame, next_heartbeat, origin

JPEGS = synthetic_jpegs(6)
OWN = {"cam1": JPEGS[0:2], "cam2": JPEGS[2:4], "cam3": JPEGS[4:6]}


@contextlib.asynccontextmanager
async def three_cameras(nats_url: str):
    async with (
        origin(nats_url, name="cam1", jpegs=OWN["cam1"]),
        origin(nats_url, name="cam2", jpegs=OWN["cam2"]),
        origin(nats_url, name="cam3", jpegs=OWN["cam3"]),
    ):
        yield


async def _camera_of(client: StreamClient) -> str:
    frame = await next_frame(client, timeout_s=10)
    return next(name for name, jpegs in OWN.items() if strip_tags(frame.jpeg) in jpegs)


async def test_each_client_picks_its_camera_and_plain_ws_gets_the_first(nats_server):
    async with (
        three_cameras(nats_server.url),
        fleet_edge(nats_server.url, wait_for_cameras=3) as relay,
    ):
        async with StreamClient(relay.url + "?camera=cam2") as two:
            beat = await next_heartbeat(two, timeout_s=10, camera_name="cam2")
            assert beat["cameras"] == ["cam1", "cam2", "cam3"]
            assert await _camera_of(two) == "cam2"
            assert await frame_rate(two, seconds(1)) >= 25
            async with (
                StreamClient(relay.url + "?camera=cam3") as three,
                StreamClient(relay.url) as plain,
            ):
                assert await _camera_of(three) == "cam3"
                assert await _camera_of(plain) == "cam1"
                beat = await next_heartbeat(plain, camera_name="cam1")
                assert beat["clients"] == 1  # each camera counts its own clients
        # The seed's client, unchanged, on plain /ws.
        welcome, jpeg = await asyncio.to_thread(_seed_client, relay.url)
        assert json.loads(welcome)["type"] == "welcome"
        assert strip_tags(jpeg) in OWN["cam1"]


def _seed_client(url: str) -> tuple[str, bytes]:
    """The seed's Python client's calls: the welcome, then the first binary message."""
    seed = websocket.create_connection(url, timeout=5)
    try:
        welcome = seed.recv()
        while isinstance(message := seed.recv(), str):
            pass
        return welcome, message
    finally:
        seed.close()


async def test_the_default_camera_and_an_unknown_camera(nats_server):
    async with three_cameras(nats_server.url), fleet_edge(nats_server.url, "cam3", 3) as relay:
        async with StreamClient(relay.url) as plain:
            assert await _camera_of(plain) == "cam3"
        request = "GET /ws?camera=nope HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        request += "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        request += "Sec-WebSocket-Version: 13\r\n\r\n"
        reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
        writer.write(request.encode())
        answer = await asyncio.wait_for(reader.read(4096), seconds(5))
        writer.close()
        assert answer.startswith(b"HTTP/1.1 404")
        assert b"No camera 'nope' here. Live: cam1, cam2, cam3" in answer
