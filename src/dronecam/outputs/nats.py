"""`serve --publish nats://...`: every frame served, as is, on `dronecam.NAME.frames` (docs/nats.md).

A stream output: its hub callback only wakes the publisher task, which takes the newest frame
when it runs and hands it to nats-py without waiting for the network. While NATS is slow or
gone the frame is skipped and counted, so local viewers never wait for the broker. The status
(the heartbeat's fields, this server's URL) goes out every heartbeat on `dronecam.NAME.status`;
requests on `dronecam.NAME.snapshot` get the newest frame; `--replay S` keeps the last S
seconds in a JetStream stream bounded in age and bytes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable

from .. import bus
from ..core.compat import ticks_diff, ticks_ms
from ..core.hub import Hub, Subscription

log = logging.getLogger("dronecam.nats")

# More than this much still queued in nats-py means the link is behind: skip, do not queue.
MAX_QUEUED_BYTES = 256 * 1024


class PublisherSettings:
    """Where and as whom to publish, and how much replay to keep."""

    def __init__(
        self,
        address: bus.NatsAddress,
        name: str,
        heartbeat_ms: int = 1000,
        replay_s: float = 0,
        replay_bytes: int = 256 * 1024 * 1024,
        replay_storage: str = "memory",
        reconnect_wait_s: float = 0.25,
    ) -> None:
        bus.check_name(name)
        if replay_s < 0 or replay_bytes <= 0:
            raise ValueError("--replay and --replay-bytes must be positive")
        if replay_storage not in ("memory", "file"):
            raise ValueError("--replay-storage is memory or file")
        self.address = address
        self.name = name
        self.heartbeat_ms = heartbeat_ms
        self.replay_s = replay_s
        self.replay_bytes = replay_bytes
        self.replay_storage = replay_storage
        self.reconnect_wait_s = reconnect_wait_s


class NatsPublisher:
    """Publishes the hub's frames and the server's status to NATS; never blocks the hub."""

    name = "nats"

    def __init__(
        self, settings: PublisherSettings, describe: Callable[[], dict] | None = None
    ) -> None:
        self.settings = settings
        # The server's heartbeat fields and URL; set once the server exists (cli/serve.py).
        self.describe = describe
        self.state = "connecting"
        self.published = 0
        self.skipped = 0
        self.errors = 0
        self.replay = "off" if not settings.replay_s else "pending"
        self._hub: Hub | None = None
        self._subscription: Subscription | None = None
        self._wake = asyncio.Event()
        self._client = None
        self._tasks: list[asyncio.Task[None]] = []
        self._told_unreachable = False
        self._last_frame_ms: int | None = None

    async def start(self, hub: Hub) -> None:
        self._hub = hub
        self._subscription = hub.subscribe(self._on_frame, client=False)
        self._tasks = [asyncio.create_task(self._run())]

    def _on_frame(self) -> None:
        self._last_frame_ms = ticks_ms()
        self._wake.set()

    async def stop(self) -> None:
        if self._hub is not None and self._subscription is not None:
            self._hub.unsubscribe(self._subscription)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        client, self._client = self._client, None
        if client is not None:
            if client.is_connected:
                await self._publish_status(client, gone=True)
            self.state = "stopped"  # closing is no loss of the link
            try:
                await asyncio.wait_for(client.close(), 2)
            except (TimeoutError, Exception):  # a dead link may not close politely
                pass

    def status(self) -> dict:
        dropped = self._subscription.frames_dropped if self._subscription else 0
        return {
            "nats": self.state,
            "nats_published": self.published,
            "nats_skipped": self.skipped + dropped,
            "nats_replay": self.replay,
        }

    async def _run(self) -> None:
        client = await self._connect()
        self._client = client
        await client.subscribe(bus.snapshot_subject(self.settings.name), cb=self._answer_snapshot)
        if self.settings.replay_s:
            await self._ensure_replay(client)
        self._tasks.append(asyncio.create_task(self._send_status(client)))
        subject = bus.frames_subject(self.settings.name)
        assert self._subscription is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            frame = self._subscription.take()
            if frame is None:
                continue
            if not client.is_connected or client.pending_data_size > MAX_QUEUED_BYTES:
                self.skipped += 1
                continue
            try:
                await client.publish(subject, frame.jpeg())
            except Exception as error:  # nats-py raises several kinds while a link goes down
                self.errors += 1
                self.skipped += 1
                log.debug("[NATS] publish failed: %s", bus.describe_error(error))
                continue
            self.published += 1

    async def _connect(self):
        nats = bus.import_nats()
        address = self.settings.address
        # nats-py retries the first connection forever too with max_reconnect_attempts=-1.
        return await nats.connect(
            name="dronecam-publisher-%s" % self.settings.name,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=self.settings.reconnect_wait_s,
            connect_timeout=2,
            ping_interval=5,
            max_outstanding_pings=2,
            pending_size=2 * MAX_QUEUED_BYTES,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
            **address.connect_options(),
        )

    async def _on_error(self, error: Exception) -> None:
        if self.state != "connected" and not self._told_unreachable:
            self._told_unreachable = True
            log.warning(
                "[NATS] cannot reach %s (%s); publishing as soon as it answers, serving locally",
                self.settings.address.shown,
                bus.describe_error(error),
            )

    async def _on_disconnected(self) -> None:
        if self.state == "stopped":
            return
        if self.state == "connected":
            log.warning(
                "[NATS] lost %s; reconnecting, serving locally", self.settings.address.shown
            )
        self.state = "reconnecting"

    async def _on_reconnected(self) -> None:
        self._mark_connected()
        if self.settings.replay_s and self._client is not None:
            # A NATS server that restarted lost a memory stream: make sure it is there again.
            self._tasks.append(asyncio.create_task(self._ensure_replay(self._client)))

    def _mark_connected(self) -> None:
        if self.state != "connected":
            self.state = "connected"
            self._told_unreachable = False
            log.info(
                "[NATS] publishing %s on %s",
                bus.frames_subject(self.settings.name),
                self.settings.address.shown,
            )

    async def _send_status(self, client) -> None:
        self._mark_connected()
        interval_s = self.settings.heartbeat_ms / 1000
        while True:
            if client.is_connected:
                self._mark_connected()
                await self._publish_status(client)
            await asyncio.sleep(interval_s)

    async def _publish_status(self, client, gone: bool = False) -> None:
        fields = dict(self.describe()) if self.describe else {}
        fields.update(self.status())
        fields["name"] = self.settings.name
        fields["published_at"] = time.time()
        fields["ttl_s"] = 3 * self.settings.heartbeat_ms / 1000
        if self._hub is not None and self._hub.latest is not None:
            fields["frame_bytes"] = len(self._hub.latest.jpeg())
        if self._last_frame_ms is not None:
            fields["frame_age_ms"] = ticks_diff(ticks_ms(), self._last_frame_ms)
        if gone:
            fields["camera"] = "stopped"
        try:
            await client.publish(
                bus.status_subject(self.settings.name), json.dumps(fields).encode()
            )
            if gone:
                await asyncio.wait_for(client.flush(), 1)
        except Exception as error:  # the status is best effort; the next heartbeat retries
            log.debug("[NATS] status not sent: %s", bus.describe_error(error))

    async def _answer_snapshot(self, message) -> None:
        latest = self._hub.latest if self._hub is not None else None
        if message.reply:
            await message.respond(bytes(latest.jpeg()) if latest is not None else b"")

    async def _ensure_replay(self, client) -> None:
        from nats.js.api import DiscardPolicy, StorageType, StreamConfig
        from nats.js.errors import NotFoundError

        settings = self.settings
        config = StreamConfig(
            name=bus.replay_stream(settings.name),
            subjects=[bus.frames_subject(settings.name)],
            max_age=settings.replay_s,
            max_bytes=settings.replay_bytes,
            storage=StorageType(settings.replay_storage),
            discard=DiscardPolicy.OLD,
            allow_direct=True,
        )
        js = client.jetstream(timeout=2)
        try:
            try:
                await js.stream_info(config.name)
                await js.update_stream(config)
            except NotFoundError:
                await js.add_stream(config)
        except Exception as error:  # no JetStream, no permission, a limit of the account
            self.replay = "unavailable"
            log.warning(
                "[NATS] no replay for %s: %s (the server needs JetStream: nats-server -js)",
                settings.name,
                bus.describe_error(error),
            )
            return
        self.replay = "%gs" % settings.replay_s
        log.info(
            "[NATS] replay: the last %g s (at most %d bytes, %s) in stream %s",
            settings.replay_s,
            settings.replay_bytes,
            settings.replay_storage,
            config.name,
        )
