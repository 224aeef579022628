"""One place that builds source → feed → hub → server from settings (CLI, tools and tests)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence

from ..core.hub import Hub
from ..core.source import Feed, FeedSettings
from ..core.telemetry import TelemetryState
from ..outputs import StreamOutput
from .camera_component import MavlinkCamera, MavlinkSettings
from .listener import StreamServer
from .settings import ServerSettings


def build_server(
    source,
    settings: ServerSettings | None = None,
    feed_settings: FeedSettings | None = None,
    log: Callable[[str], None] | None = None,
    outputs: Sequence[StreamOutput] = (),
    mavlink: MavlinkSettings | None = None,
) -> StreamServer:
    """A server for `source`, not started: `await server.feed.open()`, then `start()`.

    Args:
        source: an opened-on-demand source (see `dronecam.sources.make_source`).
        log: where the feed reports camera events (default: print).
        outputs: server-wide outputs (encoders, publishers) started and stopped with it.
        mavlink: make the server a MAVLink camera whose frames carry the vehicle's telemetry.
    """
    telemetry = None
    hub = Hub()
    if mavlink is not None:
        state = telemetry = TelemetryState(mavlink.system_id, mavlink.max_age_ms)
        hub = Hub(annotate=lambda capture_us: state.encode_at(capture_us // 1000))
    feed = Feed(source, hub, feed_settings, log=log or print)
    server = StreamServer(feed, settings, outputs=outputs)
    if mavlink is not None and telemetry is not None:
        server.outputs.append(MavlinkCamera(mavlink, telemetry, server))
    if getattr(source, "serves_every_camera", False):  # nats://HOST:PORT/*
        from .cameras import CameraSet

        cameras = CameraSet(source, server.settings, feed_settings, log or print)
        server.cameras = cameras
        server.outputs.append(cameras)
    for output in outputs:
        if hasattr(output, "describe"):  # a publisher says what the server says, and its URL
            output.describe = server.status_fields  # type: ignore[attr-defined]
    return server


@contextlib.asynccontextmanager
async def running_server(
    source,
    settings: ServerSettings | None = None,
    feed_settings: FeedSettings | None = None,
    log: Callable[[str], None] | None = None,
    outputs: Sequence[StreamOutput] = (),
    mavlink: MavlinkSettings | None = None,
) -> AsyncIterator[StreamServer]:
    """A started server (its source opened first, so start-up errors surface), stopped on exit."""
    server = build_server(source, settings, feed_settings, log, outputs, mavlink)
    await server.feed.open()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
