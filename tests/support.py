"""What many tests share: one timeout scale, media made on the spot, servers on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator

from dronecam.core.source import FeedSettings
from dronecam.server import ServerSettings, StreamServer, running_server
from dronecam.sources.synthetic import SyntheticCamera
from dronecam.tools.browser import CHROMIUM_ARGS
from dronecam.tools.media import ListSource, synthetic_jpegs
from dronecam.tools.natsd import free_port

__all__ = [
    "CHILD_ENV",
    "CHROMIUM_ARGS",
    "ListSource",
    "free_port",
    "host_server",
    "seconds",
    "start_dronecam",
    "synthetic_jpegs",
]

# Every timeout in the suite is multiplied by this (DRONECAM_TEST_TIMEOUT_SCALE on slow machines).
TIMEOUT_SCALE = float(os.environ.get("DRONECAM_TEST_TIMEOUT_SCALE", "1"))


def seconds(value: float) -> float:
    return value * TIMEOUT_SCALE


# A child process imports this checkout and the test helpers, as the tests do.
CHILD_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


async def start_dronecam(
    *args: str,
    env: dict[str, str] | None = None,
    stdout: int | None = None,
    stderr: int | None = None,
    command: tuple[str, ...] = ("-m", "dronecam"),
) -> asyncio.subprocess.Process:
    """`python -m dronecam ARGS` as a child process on this checkout, not waited for.

    `env` adds to CHILD_ENV; stdout and stderr are inherited unless given (PIPE, STDOUT).
    """
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *command,
        *args,
        env={**CHILD_ENV, **(env or {})},
        stdout=stdout,
        stderr=stderr,
    )


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
