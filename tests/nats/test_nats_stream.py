"""One camera through NATS: published as is, served by edges with the seed's protocol."""

from dronecam.client import StreamClient
from dronecam.core.protocol import read_tags, strip_tags
from support import seconds, synthetic_jpegs
from support_nats import edge, frame_rate, next_frame, next_heartbeat, origin, publisher_of

JPEGS = synthetic_jpegs(4)


async def test_an_edge_serves_the_published_frames_unchanged_at_the_camera_rate(nats_server):
    async with (
        origin(nats_server.url, jpegs=JPEGS) as camera,
        edge(nats_server.url + "/cam1") as relay,
        StreamClient(relay.url) as client,
    ):
        frame = await next_frame(client)
        assert strip_tags(frame.jpeg) in JPEGS
        assert len(read_tags(frame.jpeg)) == 2  # the edge's tag, then the camera's
        assert await frame_rate(client, seconds(2)) >= 25
        beat = await next_heartbeat(client, upstream="connected")
        assert beat["upstream_camera"] == "ok" and beat["upstream_foreign"] == 0
        assert beat["clients"] == 1
        status = publisher_of(camera).status()
        assert status["nats"] == "connected" and status["nats_published"] > 40
