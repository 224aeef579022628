"""What the NATS tests share: an origin that publishes, an edge that serves, heartbeats read."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from dronecam.bus import NatsAddress
from dronecam.client import ReceivedFrame, ServerMessage, StreamClient
from dronecam.core.source import FeedSettings
from dronecam.outputs.nats import NatsPublisher, PublisherSettings
from dronecam.server import ServerSettings, StreamServer, build_server, running_server
from dronecam.sources.nats import FleetSource, NatsSource
from support import ListSource, seconds, synthetic_jpegs

FAST_RETRY = FeedSettings(retry_min_ms=50, retry_max_ms=250)


@contextlib.asynccontextmanager
async def origin(
    nats_url: str, name: str = "cam1", fps: float = 30, replay_s: float = 0, jpegs=None, **settings
) -> AsyncIterator[StreamServer]:
    """A camera server on loopback that publishes on NATS as `name`."""
    settings.setdefault("host", "127.0.0.1")
    settings.setdefault("port", 0)
    settings.setdefault("heartbeat_interval_ms", 200)
    publisher = NatsPublisher(
        PublisherSettings(
            NatsAddress(nats_url),
            name,
            heartbeat_ms=settings["heartbeat_interval_ms"],
            replay_s=replay_s,
            reconnect_wait_s=0.1,
        )
    )
    source = ListSource(jpegs or synthetic_jpegs(4), fps=fps)
    source.width, source.height = 640, 480  # type: ignore[attr-defined]  # what the JPEGs are
    async with running_server(
        source,
        ServerSettings(**settings),
        outputs=[publisher],
    ) as server:
        yield server


@contextlib.asynccontextmanager
async def edge(nats_url: str, **settings) -> AsyncIterator[StreamServer]:
    """A server whose source is a camera on NATS (`nats_url` ends in /NAME)."""
    settings.setdefault("host", "127.0.0.1")
    settings.setdefault("port", 0)
    settings.setdefault("heartbeat_interval_ms", 200)
    settings.setdefault("max_clients", 100)
    async with running_server(
        NatsSource(nats_url, open_timeout_s=seconds(1.5)), ServerSettings(**settings), FAST_RETRY
    ) as server:
        yield server


@contextlib.asynccontextmanager
async def fleet_edge(
    nats_url: str, default_camera: str | None = None, wait_for_cameras: int = 0, **settings
) -> AsyncIterator[StreamServer]:
    """A server of every camera on NATS (`nats_url` without a camera; /* is added), returned
    once it has heard of `wait_for_cameras` cameras."""
    settings.setdefault("host", "127.0.0.1")
    settings.setdefault("port", 0)
    settings.setdefault("heartbeat_interval_ms", 200)
    source = FleetSource(nats_url + "/*", open_timeout_s=seconds(1.5))
    source.default_camera = default_camera
    server = build_server(source, ServerSettings(**settings), FAST_RETRY)
    await server.start()  # its first open waits for the fleet: the feed retries meanwhile
    try:
        if wait_for_cameras:
            cameras = server.cameras
            assert cameras is not None
            loop = asyncio.get_running_loop()
            deadline = loop.time() + seconds(10)
            while len(cameras.names()) < wait_for_cameras:
                assert loop.time() < deadline, "the edge heard of %s only" % cameras.names()
                await asyncio.sleep(0.05)
        yield server
    finally:
        await server.stop()


def publisher_of(server: StreamServer) -> NatsPublisher:
    return next(output for output in server.outputs if isinstance(output, NatsPublisher))


async def next_frame(client: StreamClient, timeout_s: float = 5) -> ReceivedFrame:
    """The next frame within `timeout_s` (scaled), whatever else comes meanwhile."""

    async def wait() -> ReceivedFrame:
        async for item in client:
            if isinstance(item, ReceivedFrame):
                return item
        raise AssertionError("the stream ended")

    return await asyncio.wait_for(wait(), seconds(timeout_s))


async def next_heartbeat(client: StreamClient, timeout_s: float = 5, **wanted) -> dict:
    """The next heartbeat whose fields include `wanted`, within `timeout_s` (scaled)."""

    async def wait() -> dict:
        async for item in client:
            if isinstance(item, ServerMessage) and item.type == "heartbeat":
                if all(item.data.get(key) == value for key, value in wanted.items()):
                    return item.data
        raise AssertionError("the stream ended")

    return await asyncio.wait_for(wait(), seconds(timeout_s))


async def frame_rate(client: StreamClient, duration_s: float) -> float:
    """Frames per second `client` receives over `duration_s`."""
    items = aiter(client)
    loop = asyncio.get_running_loop()
    end = loop.time() + duration_s
    count = 0
    while (remaining := end - loop.time()) > 0:
        try:
            item = await asyncio.wait_for(anext(items), remaining)
        except TimeoutError:
            break
        if isinstance(item, ReceivedFrame):
            count += 1
    return count / duration_s
