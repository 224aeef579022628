"""server/wiring.py: a source wired through feed and hub; bad frames are counted, never sent."""

import asyncio
import json

import websockets

from dronecam.core import protocol
from support import ListSource, host_server, seconds, synthetic_jpegs


async def test_oversized_and_broken_frames_are_counted_never_sent():
    good = synthetic_jpegs(3)
    oversized = good[0][:2] + b"\x00" * (protocol.MAX_FRAME_SIZE + 10) + b"\xff\xd9"
    source = ListSource([good[0], oversized, good[1], b"not a jpeg", good[2]], fps=50)
    async with host_server(source=source) as server, websockets.connect(server.url) as ws:
        sizes = []
        async with asyncio.timeout(seconds(5)):
            while len(sizes) < 6:
                message = await ws.recv()
                if isinstance(message, bytes):
                    sizes.append(len(message))
        assert max(sizes) <= max(len(jpeg) for jpeg in good) + protocol.TAG_SIZE
        await ws.send("get_stats")
        async with asyncio.timeout(seconds(5)):
            while not isinstance(message, str) or '"stats"' not in message:
                message = await ws.recv()
        assert json.loads(message)["frames_rejected"] >= 2
