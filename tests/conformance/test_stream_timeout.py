"""The stream-timeout rule of docs/protocol.md §1 on every server: a frame must wait for it."""

import asyncio
import json

import websockets

from dronecam.core import protocol
from support import seconds

TIMEOUT_MS = 500
HEARTBEAT_MS = 100


async def test_a_client_that_stops_taking_frames_is_closed_within_timeout_and_a_heartbeat(
    start_server,
):
    options = {"stream_timeout_ms": TIMEOUT_MS, "heartbeat_interval_ms": HEARTBEAT_MS}
    async with start_server(**options) as server, websockets.connect(server.url) as ws:
        await ws.send("window 1")  # and never an ack: one more frame, then none is taken
        loop = asyncio.get_running_loop()
        last_frame_s = loop.time()
        code = None
        try:
            async with asyncio.timeout(seconds(5)):
                while True:
                    if isinstance(await ws.recv(), bytes):
                        last_frame_s = loop.time()
        except websockets.ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
        waited_s = loop.time() - last_frame_s
    assert code == protocol.CLOSE_POLICY_VIOLATION
    assert (
        TIMEOUT_MS / 1000 * 0.9 <= waited_s <= (TIMEOUT_MS + HEARTBEAT_MS) / 1000 + seconds(0.4)
    ), waited_s


async def test_a_client_behind_a_stalled_camera_is_not_closed(start_server):
    """A lazy client: it acks its one frame only once a heartbeat says a newer one exists.

    So while the camera is stalled it holds the newest frame with no credit left, much longer
    than the timeout, and nothing waits for it: it must stay connected and stream on after.
    """
    options = {
        "stream_timeout_ms": TIMEOUT_MS,
        "heartbeat_interval_ms": HEARTBEAT_MS,
        "camera_stall": (45, 1500),
    }
    async with start_server(**options) as server, websockets.connect(server.url) as ws:
        await ws.send("window 1")
        loop = asyncio.get_running_loop()
        held_seq, held_since_s, longest_hold_s, frames_after_stall = 0, 0.0, 0.0, 0
        async with asyncio.timeout(seconds(10)):
            while frames_after_stall < 3:
                message = await ws.recv()  # a close would raise here
                if isinstance(message, bytes):
                    held_seq, held_since_s = protocol.read_tag(message)[0], loop.time()
                    frames_after_stall += longest_hold_s > 1
                    continue
                heartbeat = json.loads(message)
                if heartbeat["type"] == "heartbeat" and held_seq and heartbeat["frames"] > held_seq:
                    longest_hold_s = max(longest_hold_s, loop.time() - held_since_s)
                    held_seq = 0
                    await ws.send("ack")
    assert longest_hold_s > 1, "no stall seen: %.2f s" % longest_hold_s
