"""Outputs: everything that takes frames from the hub (docs/architecture.md §Outputs).

An output subscribes to the hub with a callback that must not block, takes the newest frame
when it can write (skipped frames are its drops), and is checked by the server's housekeeping
once per heartbeat. Two shapes share that discipline:

- a client output, one per connected client (`websocket.Connection`, `mjpeg.MjpegClient`):
  `ClientOutput`;
- a stream output, one per server, running beside the clients (an encoder, a publisher, a
  recorder): `StreamOutput`, started and stopped with the server, its figures in stats.

A stream output may also answer HTTP paths on the server's port with a `routes` table
(`http.py`): `mjpeg.MjpegOutput`, `snapshot.SnapshotOutput`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

from ..core.hub import Hub, Subscription
from ..core.source import Feed
from ..core.status import ServerStatus

if TYPE_CHECKING:
    from ..server.settings import ServerSettings


class ClientOutput(Protocol):
    """One client of the server, fed from its own hub subscription."""

    subscription: Subscription | None
    transport: asyncio.Transport | None

    def on_frame(self) -> None:
        """The hub's callback: write the newest frame now if the client can take it."""

    def check_timeouts(self, now_ms: int) -> None:
        """Once per heartbeat: close the client if it broke a handshake or stream timeout."""

    def close(self, code: int, reason: str) -> None:
        """Say goodbye if the client can still hear it, else drop it."""

    def write_framed(self, message: bytes) -> None:
        """Write a WebSocket message framed once for all clients (heartbeats), if it speaks it."""


class StreamOutput(Protocol):
    """One server-wide consumer of the stream (encoder, publisher, recorder)."""

    name: str

    async def start(self, hub: Hub) -> None:
        """Subscribe to `hub` and start working; return once running."""

    async def stop(self) -> None:
        """Unsubscribe and release what it holds; bounded in time."""

    def status(self) -> dict:
        """Its figures for heartbeats and stats (fps, skipped, errors), under its own keys."""


class OutputServer(Protocol):
    """What client outputs need of the server that runs them (server/listener.py's StreamServer).

    Named here so that outputs depend on this interface, not on the listener that imports them.
    """

    settings: ServerSettings
    feed: Feed
    hub: Hub
    status: ServerStatus
    connections: set[ClientOutput]
    outputs: list[StreamOutput]

    def status_for(self, camera: str | None) -> ServerStatus | None:
        """The status (and so the hub) of the camera a client asked for; None if unknown."""

    def no_camera_text(self, camera: str | None) -> str:
        """The 404 text for a camera this server does not serve."""
