"""`ws://HOST:PORT/ws` (or wss://): another dronecam server or the ESP32 as this server's camera.

The relay takes one stream from upstream (the device serves 5 clients; a laptop relay serves
many) and re-serves it. Upstream frames keep their tags after the relay's own, so a client can
see the latency each hop adds (`protocol.read_tags`). An upstream that is not there yet (a
companion computer boots before the drone's WiFi is up) or that drops is retried with backoff;
meanwhile `waiting` says why, and the feed reports the camera as `waiting` in heartbeats.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from ..client import ReceivedFrame, ServerMessage, StreamClient, StreamError, stream_url
from ..core.source import SourceError


class RelaySource:
    """Frames from an upstream stream, taken with credit flow so they are always the newest."""

    def __init__(
        self,
        url: str,
        settings=None,
        window: int = 2,
        open_timeout_s: float = 1.5,
        backoff_min_s: float = 0.25,
        backoff_max_s: float = 2.0,
    ):
        try:
            stream_url(url)
        except StreamError as error:
            raise SourceError("relay: %s" % error) from None
        self.url = url
        self.name = "relay:%s" % url
        self.window = window
        self.open_timeout_s = open_timeout_s
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self.width: int | None = None
        self.height: int | None = None
        self.fps: float | None = None
        self.upstream: dict = {}
        # Why no frame can come now (upstream unreachable, lost, full), None while streaming.
        self.waiting: str | None = None
        self._client: StreamClient | None = None
        self._items: AsyncIterator[ReceivedFrame | ServerMessage] | None = None

    async def open(self) -> None:
        """Start following the upstream; the connection is made (and retried) by read()."""
        self._client = StreamClient(
            self.url,
            window=self.window,
            reconnect=True,
            open_timeout_s=self.open_timeout_s,
            backoff_min_s=self.backoff_min_s,
            backoff_max_s=self.backoff_max_s,
        )
        self._items = aiter(self._client)

    async def read(self) -> bytes:
        assert self._client is not None and self._items is not None, "open() the relay first"
        while True:
            item = await anext(self._items)
            if isinstance(item, ReceivedFrame):
                self.waiting = None
                return item.jpeg
            if item.type == "disconnected":
                self.waiting = "upstream %s: %s; retrying" % (
                    self._client.shown_url,
                    item.data["reason"],
                )
            elif item.type == "welcome":
                self.upstream = item.data
                self.width = item.data.get("width")
                self.height = item.data.get("height")
                self.fps = item.data.get("fps")

    async def close(self) -> None:
        client, items = self._client, self._items
        self._client = self._items = None
        self.waiting = None
        if items is not None:
            await items.aclose()  # type: ignore[attr-defined]
        if client is not None:
            await client.close()
