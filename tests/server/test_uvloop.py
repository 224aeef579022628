"""The host server on uvloop (`dronecam serve --uvloop`): the same frames, the same contract."""

import asyncio

import pytest
import websockets

from dronecam.core import protocol
from support import ListSource, host_server, seconds, synthetic_jpegs

uvloop = pytest.importorskip("uvloop")


def test_server_streams_tagged_frames_on_uvloop():
    async def scenario() -> list[bytes]:
        async with host_server(ListSource(synthetic_jpegs(3))) as server:
            async with websockets.connect(server.url) as ws:
                welcome = await asyncio.wait_for(ws.recv(), seconds(5))
                assert '"welcome"' in welcome
                frames = []
                while len(frames) < 3:
                    message = await asyncio.wait_for(ws.recv(), seconds(5))
                    if isinstance(message, bytes):
                        frames.append(message)
                return frames

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        frames = runner.run(scenario())
    tags = [protocol.read_tag(frame) for frame in frames]
    assert all(tag is not None for tag in tags)
    seqs = [tag[0] for tag in tags if tag]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
