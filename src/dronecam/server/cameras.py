"""Every camera of a NATS cluster on one edge (`--source nats://HOST:PORT/*`), docs/nats.md.

The set watches the fleet (the cameras' status subjects) and, when a client first asks for
`/ws?camera=NAME`, starts a feed of its own for that camera: a hub and a status like the
server's, so the camera's clients get its frames, heartbeats, stats and limits. Only cameras
of the fleet are started (a client cannot make the edge subscribe to names it invents).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .. import bus
from ..core.hub import Hub
from ..core.source import Feed, FeedSettings
from ..core.status import ServerStatus
from ..sources.nats import FleetSource, NatsSource
from .settings import ServerSettings

log = logging.getLogger("dronecam.nats")


class CameraSet:
    """The cameras an edge of every camera serves; a stream output of its server."""

    name = "cameras"

    def __init__(
        self,
        source: FleetSource,
        settings: ServerSettings,
        feed_settings: FeedSettings | None = None,
        log_camera: Callable[[str], None] | None = None,
    ) -> None:
        self.source = source
        self.address = source.address
        self.settings = settings
        self.feed_settings = feed_settings
        self.log_camera = log_camera or print
        self.fleet = bus.Fleet()
        self.statuses: dict[str, ServerStatus] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._client = None
        source.choose = self.default_name

    async def start(self, hub: Hub) -> None:
        self._watcher = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        nats = bus.import_nats()

        async def quiet(error: Exception) -> None:  # the edge's own source reports NATS trouble
            pass

        self._client = client = await nats.connect(
            name="dronecam-edge-fleet",
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.25,
            error_cb=quiet,
            **self.address.connect_options(),
        )
        await self.fleet.watch(client)

    async def stop(self) -> None:
        tasks = [task for task in (self._watcher, *self._tasks.values()) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        client, self._client = self._client, None
        if client is not None:
            try:
                await asyncio.wait_for(client.close(), 2)
            except (TimeoutError, Exception):  # a dead link may not close politely
                pass

    def status(self) -> dict:
        return {"cameras": self.names()}

    def names(self) -> list[str]:
        return [name for name, _, _ in self.fleet.live()]

    def default_name(self) -> str | None:
        if self.source.default_camera:
            return self.source.default_camera
        names = self.names()
        return names[0] if names else None

    def status_for(self, camera: str | None, default: ServerStatus) -> ServerStatus | None:
        """The status for `/ws?camera=NAME` (the default's for plain /ws); None if not live."""
        if camera is None:
            return default
        status = self.statuses.get(camera)
        if status is None and camera in self.names():
            status = self._start_camera(camera)
        return status

    def _start_camera(self, camera: str) -> ServerStatus:
        source = NatsSource(self.address.with_camera(camera), open_timeout_s=1.5)
        feed = Feed(source, Hub(), self.feed_settings, log=self.log_camera)
        settings = self.settings
        status = ServerStatus(
            feed,
            settings.max_clients,
            settings.heartbeat_interval_ms,
            settings.stream_timeout_ms,
            self.status,
        )
        self.statuses[camera] = status
        self._tasks[camera] = asyncio.create_task(feed.run())
        log.info("[NATS] edge now serves %s at /ws?camera=%s", camera, camera)
        return status
