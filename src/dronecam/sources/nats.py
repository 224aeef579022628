"""`nats://HOST:PORT/NAME`: a camera published on NATS as this server's source (an edge).

The subscription hands each message to a one-frame slot (newest wins) and keeps nats-py's own
pending queue to two frames' bytes, so the client always reads its socket promptly and the NATS
server never cuts it off as a slow consumer. Messages that are not tagged dronecam JPEGs are
counted and never served. nats-py reconnects to any node of the cluster by itself; the feed's
watchdog covers a camera that stops publishing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from urllib.parse import urlsplit

from .. import bus
from ..core.compat import ticks_diff, ticks_ms
from ..core.protocol import MAX_FRAME_SIZE
from ..core.source import SourceError
from .slot import FrameSlot

log = logging.getLogger("dronecam.nats")

SILENCE_MS = 1000  # no frame this long over a live link: the camera is `waiting`

# nats-py's queue in front of the slot: two frames' bytes, a few small messages more.
PENDING_FRAMES = 2
PENDING_MESSAGES = 4


class NatsSource:
    """Frames of one camera from NATS, newest first; its publisher's status as `upstream`."""

    def __init__(
        self,
        url: str | bus.NatsAddress,
        settings=None,
        open_timeout_s: float = 1.5,
        max_frame_bytes: int = MAX_FRAME_SIZE,
    ) -> None:
        try:
            self.address = url if isinstance(url, bus.NatsAddress) else bus.NatsAddress(url)
        except bus.BusError as error:
            raise SourceError(str(error)) from None
        if self.address.camera in (None, bus.ALL_CAMERAS):
            raise SourceError(
                "%s names no camera: use nats://HOST:PORT/NAME (docs/nats.md)" % self.address.shown
            )
        self.camera: str = self.address.camera  # type: ignore[assignment]
        self.name = "nats:%s" % self.address.shown
        self.open_timeout_s = open_timeout_s
        self.max_frame_bytes = max_frame_bytes
        self.width: int | None = None
        self.height: int | None = None
        self.fps: float | None = None
        self.upstream: dict = {}
        self.foreign = 0
        self.skipped = 0
        self.received = 0
        self.state = "closed"
        self._client = None
        self._slot: FrameSlot | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._last_frame_ms = 0
        # Why no frame can come now (NATS unreachable, the camera silent), None while streaming:
        # the feed reports it as the camera's `waiting` state instead of restarting the source.
        self.waiting: str | None = None
        # Asked while waiting: True ends the stream (a fleet edge's default moved elsewhere).
        self.give_up: Callable[[], bool] | None = None

    async def open(self) -> None:
        """Start following the camera; nats-py connects (and reconnects) in the background."""
        try:
            bus.import_nats()
            self.address.connect_options()
        except bus.BusError as error:
            raise SourceError(str(error)) from None
        self._slot = FrameSlot()
        self._last_frame_ms = ticks_ms()
        self.waiting = "connecting to NATS at %s" % self.address.server
        self._tasks = [asyncio.create_task(self._connect()), asyncio.create_task(self._watch())]

    async def _connect(self) -> None:
        nats = bus.import_nats()
        # With max_reconnect_attempts=-1 nats-py retries the first connection forever too.
        client = await nats.connect(
            name="dronecam-edge-%s" % self.camera,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.1,
            connect_timeout=max(1, int(self.open_timeout_s)),
            ping_interval=5,
            max_outstanding_pings=2,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
            **self.address.connect_options(),
        )
        self._client = client
        self.state = "connected"
        self._last_frame_ms = ticks_ms()
        self.waiting = "camera %r: no frame yet on %s" % (self.camera, self.address.server)
        await client.subscribe(
            bus.frames_subject(self.camera),
            cb=self._on_frame,
            pending_msgs_limit=PENDING_MESSAGES,
            pending_bytes_limit=PENDING_FRAMES * (self.max_frame_bytes + 1024),
        )
        await client.subscribe(bus.status_subject(self.camera), cb=self._on_status)

    async def _watch(self) -> None:
        """A camera that sends nothing over a live link is waited for, not a stalled source."""
        while True:
            await asyncio.sleep(SILENCE_MS / 2000)
            silent_ms = ticks_diff(ticks_ms(), self._last_frame_ms)
            if self.waiting is None and self.state == "connected" and silent_ms > SILENCE_MS:
                stopped = self.upstream.get("camera") == "stopped"
                self.waiting = "camera %r %s on %s" % (
                    self.camera,
                    "stopped" if stopped else "sends no frames",
                    self.address.server,
                )
            if self.waiting and self.give_up is not None and self.give_up():
                assert self._slot is not None
                self._slot.fail(SourceError("camera %r is no longer wanted" % self.camera))
                return

    async def _on_frame(self, message) -> None:
        payload = message.data
        if not bus.is_dronecam_frame(payload, self.max_frame_bytes):
            self.foreign += 1
            return
        self.received += 1
        self._last_frame_ms = ticks_ms()
        self.waiting = None
        assert self._slot is not None
        self._slot.put(payload)

    async def _on_status(self, message) -> None:
        try:
            status = json.loads(message.data)
        except ValueError:
            self.foreign += 1
            return
        if isinstance(status, dict):
            self.upstream = status
            for name in ("width", "height", "fps"):
                if getattr(self, name) is None and isinstance(status.get(name), int | float):
                    setattr(self, name, status[name])

    async def _on_error(self, error: Exception) -> None:
        from nats.errors import SlowConsumerError

        if isinstance(error, SlowConsumerError):
            self.skipped += 1
        else:
            if self.state != "connected":
                self.waiting = "cannot reach NATS at %s (%s); retrying" % (
                    self.address.server,
                    bus.describe_error(error),
                )
            log.debug("[NATS] edge %s: %s", self.camera, bus.describe_error(error))

    async def _on_disconnected(self) -> None:
        if self.state == "closed":
            return
        if self.state == "connected":
            log.warning("[NATS] edge lost %s; reconnecting", self.address.server)
        self.state = "reconnecting"

    async def _on_reconnected(self) -> None:
        self.state = "connected"
        log.info("[NATS] edge reconnected to %s", self.address.server)

    async def read(self) -> bytes:
        assert self._slot is not None, "open() the source first"
        payload = await self._slot.take()
        return payload  # type: ignore[return-value]

    def status(self) -> dict:
        """The upstream's state for heartbeats, as the relay reports it."""
        skipped = self.skipped + (self._slot.overwritten if self._slot else 0)
        fields = {
            "camera_name": self.camera,
            "upstream": self.state,
            "upstream_camera": self.upstream.get("camera", "unknown"),
            "upstream_skipped": skipped,
            "upstream_foreign": self.foreign,
        }
        return fields

    async def close(self) -> None:
        client, self._client = self._client, None
        self.state = "closed"
        self.waiting = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if client is not None:
            try:
                await asyncio.wait_for(client.close(), 2)
            except (TimeoutError, Exception):  # the link may be dead already
                pass


class FleetSource:
    """`nats://HOST:PORT/*`: plain /ws serves the default camera, `/ws?camera=NAME` any other.

    The server's camera set (server/cameras.py) watches the fleet and serves named cameras; it
    sets `choose`, which names the default: `default_camera`, else the first live by name.
    When the default changes (that camera went away, another is first now), this source ends
    the current one's stream so the feed reopens it on the new default.
    """

    serves_every_camera = True

    def __init__(self, url: str, settings=None, open_timeout_s: float = 1.5) -> None:
        try:
            self.address = bus.NatsAddress(url)
        except bus.BusError as error:
            raise SourceError(str(error)) from None
        self.name = "nats:%s" % self.address.shown
        self.settings = settings
        self.open_timeout_s = open_timeout_s
        self.default_camera: str | None = None
        self.choose: Callable[[], str | None] | None = None  # set by the camera set
        self._camera: NatsSource | None = None
        self._idle = "no camera publishes on %s yet" % self.address.server

    def __getattr__(self, name: str):
        # width, height and fps are the current default camera's.
        if name in ("width", "height", "fps"):
            return getattr(self._camera, name, None) if self._camera else None
        raise AttributeError(name)

    @property
    def waiting(self) -> str | None:
        return self._camera.waiting if self._camera is not None else self._idle

    async def open(self) -> None:
        self._camera = None

    async def read(self) -> bytes:
        while self._camera is None:
            camera = self._default()
            if camera is not None:
                source = NatsSource(
                    self.address.with_camera(camera), self.settings, self.open_timeout_s
                )
                source.give_up = lambda camera=camera: self._default() not in (None, camera)
                await source.open()
                self._camera = source
            else:
                await asyncio.sleep(0.25)
        return await self._camera.read()

    def _default(self) -> str | None:
        return self.choose() if self.choose is not None else None

    def status(self) -> dict:
        if self._camera is None:
            return {"upstream": "closed"}
        return self._camera.status()

    async def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            await camera.close()


def from_uri(uri: str, settings=None):
    """The source for `nats://HOST:PORT/NAME`, or every camera's for `nats://HOST:PORT/*`."""
    if urlsplit(uri).path.strip("/") == bus.ALL_CAMERAS:
        return FleetSource(uri, settings)
    return NatsSource(uri, settings)
