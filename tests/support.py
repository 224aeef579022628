"""What many tests share: one timeout scale, media made on the spot, servers on loopback."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from dronecam.core.source import FeedSettings
from dronecam.server import ServerSettings, StreamServer, running_server
from dronecam.sources.synthetic import SyntheticCamera
from dronecam.tools.browser import CHROMIUM_ARGS
from dronecam.tools.media import ListSource, synthetic_jpegs

__all__ = ["CHROMIUM_ARGS", "ListSource", "host_server", "seconds", "synthetic_jpegs"]

# Every timeout in the suite is multiplied by this (DRONECAM_TEST_TIMEOUT_SCALE on slow machines).
TIMEOUT_SCALE = float(os.environ.get("DRONECAM_TEST_TIMEOUT_SCALE", "1"))


def seconds(value: float) -> float:
    return value * TIMEOUT_SCALE


@contextlib.asynccontextmanager
async def host_server(
    source=None, feed_settings: FeedSettings | None = None, outputs=(), **settings
) -> AsyncIterator[StreamServer]:
    """A real StreamServer on 127.0.0.1 and a free port, stopped on exit."""
    settings.setdefault("host", "127.0.0.1")
    settings.setdefault("port", 0)
    async with running_server(
        source or SyntheticCamera(), ServerSettings(**settings), feed_settings, outputs=outputs
    ) as server:
        yield server
