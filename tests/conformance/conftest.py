"""One suite, every server: each test here runs against each implementation of the contract.

A server factory is an async context manager taking keyword options `max_clients`,
`heartbeat_interval_ms`, `stream_timeout_ms` and `camera_stall` ((frames, ms): the camera
delivers that many frames, then none for that long, once), and yielding an object with `.url`.
"""

import asyncio
import contextlib

import pytest

from dronecam.sources.synthetic import SyntheticCamera
from support import host_server
from support_firmware import firmware_server


class StallingCamera(SyntheticCamera):
    """The synthetic camera, silent for `stall_ms` after `frames` frames, once."""

    def __init__(self, frames: int, stall_ms: int) -> None:
        super().__init__()
        self.stall_after = frames
        self.stall_ms = stall_ms
        self.reads = 0

    async def read(self) -> bytes:
        self.reads += 1
        if self.reads == self.stall_after + 1:
            await asyncio.sleep(self.stall_ms / 1000)
        return await super().read()


@contextlib.asynccontextmanager
async def host(camera_stall=None, **options):
    async with host_server(
        StallingCamera(*camera_stall) if camera_stall else None, **options
    ) as server:
        yield server


@contextlib.asynccontextmanager
async def firmware(camera_stall=None, **options):
    env = {"DRONECAM_CAMERA_STALL": "%d:%d" % camera_stall} if camera_stall else None
    async with firmware_server(env=env, **options) as server:
        yield server


SERVERS = {"host": host, "firmware": firmware}


@pytest.fixture(params=sorted(SERVERS))
def start_server(request):
    return SERVERS[request.param]
