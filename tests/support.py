"""What many tests share: one timeout scale, media made on the spot, servers on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

from dronecam.core.hub import Hub
from dronecam.core.source import Feed, FeedSettings
from dronecam.server import ServerSettings, StreamServer
from dronecam.sources.synthetic import SyntheticCamera

# Debian's Chromium, headless, with nothing reaching out to the network on its own.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

# Every timeout in the suite is multiplied by this (DRONECAM_TEST_TIMEOUT_SCALE on slow machines).
TIMEOUT_SCALE = float(os.environ.get("DRONECAM_TEST_TIMEOUT_SCALE", "1"))


def seconds(value: float) -> float:
    return value * TIMEOUT_SCALE


class ListSource:
    """A source that replays given JPEGs (or raises given exceptions) at a fixed rate."""

    name = "list"

    def __init__(self, items: list, fps: float = 30, loop: bool = True) -> None:
        self.items = items
        self.fps = fps
        self.loop = loop
        self.index = 0
        self.opened = 0
        self.closed = 0

    async def open(self) -> None:
        self.opened += 1

    async def read(self) -> bytes:
        await asyncio.sleep(1 / self.fps)
        if self.index >= len(self.items):
            if not self.loop:
                await asyncio.Event().wait()
            self.index = 0
        item = self.items[self.index]
        self.index += 1
        if isinstance(item, BaseException):
            raise item
        return item

    async def close(self) -> None:
        self.closed += 1


def synthetic_jpegs(count: int = 30, width: int = 640, height: int = 480) -> list[bytes]:
    """Real JPEGs of the synthetic scene, for sources and parsers under test."""
    camera = SyntheticCamera(width, height)
    return [camera.render(number) for number in range(1, count + 1)]


@contextlib.asynccontextmanager
async def host_server(
    source=None, feed_settings: FeedSettings | None = None, **settings
) -> AsyncIterator[StreamServer]:
    """A real StreamServer on 127.0.0.1 and a free port, stopped on exit."""
    settings.setdefault("host", "127.0.0.1")
    settings.setdefault("port", 0)
    feed = Feed(source or SyntheticCamera(), Hub(), feed_settings)
    server = StreamServer(feed, ServerSettings(**settings))
    await feed.open()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
