"""Stopping the host server with clients that will not say goodbye."""

import asyncio
import time

from dronecam.tools.wire import client_frame
from support import ListSource, host_server, seconds, synthetic_jpegs
from support_hardening import RawClient


async def test_stop_drops_clients_that_never_answer_the_close_frame():
    async with host_server(ListSource(synthetic_jpegs(5, 320, 240))) as server:
        stuck = await RawClient.connect(server.url, receive_buffer_bytes=4096)
        stuck.stop_reading()  # its buffers fill: even the close frame cannot get through
        mute = await RawClient.connect(server.url)  # reads, but never answers the close frame
        mute.send(client_frame(0x1, b"ping"))
        await asyncio.sleep(0.5)
        start = time.monotonic()
        await asyncio.wait_for(server.stop(), seconds(10))
        assert time.monotonic() - start < seconds(5)
        assert not server.connections
        for client in (stuck, mute):
            await client.wait_closed(seconds(5))
            client.close()
