"""One place that builds source → feed → hub → server from settings (CLI, tools and tests)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence

from ..core.hub import Hub
from ..core.source import Feed, FeedSettings
from ..outputs import StreamOutput
from .listener import StreamServer
from .settings import ServerSettings


def build_server(
    source,
    settings: ServerSettings | None = None,
    feed_settings: FeedSettings | None = None,
    log: Callable[[str], None] | None = None,
    outputs: Sequence[StreamOutput] = (),
) -> StreamServer:
    """A server for `source`, not started: `await server.feed.open()`, then `start()`.

    Args:
        source: an opened-on-demand source (see `dronecam.sources.make_source`).
        log: where the feed reports camera events (default: print).
        outputs: server-wide outputs (encoders, publishers) started and stopped with it.
    """
    feed = Feed(source, Hub(), feed_settings, log=log or print)
    server = StreamServer(feed, settings, outputs=outputs)
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
) -> AsyncIterator[StreamServer]:
    """A started server (its source opened first, so start-up errors surface), stopped on exit."""
    server = build_server(source, settings, feed_settings, log, outputs)
    await server.feed.open()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
