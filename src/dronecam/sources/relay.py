"""`ws://HOST:PORT/ws` (or wss://): another dronecam server or the ESP32 as this server's camera.

The relay takes one stream from upstream (the device serves 5 clients; a laptop relay serves
many) and re-serves it. Upstream frames keep their tags after the relay's own, so a client can
see the latency each hop adds (`protocol.read_tags`). A lost upstream is a camera failure the
feed reports in heartbeats and retries with backoff.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from ..client import ReceivedFrame, StreamClient, StreamError
from ..core.source import SourceError


class RelaySource:
    """Frames from an upstream stream, taken with credit flow so they are always the newest."""

    def __init__(self, url: str, settings=None, window: int = 2, open_timeout_s: float = 1.5):
        self.url = url
        self.name = "relay:%s" % url
        self.window = window
        self.open_timeout_s = open_timeout_s
        self.width: int | None = None
        self.height: int | None = None
        self.fps: float | None = None
        self.upstream: dict = {}
        self._client: StreamClient | None = None
        self._frames: AsyncIterator[ReceivedFrame] | None = None

    async def open(self) -> None:
        client = StreamClient(
            self.url, window=self.window, reconnect=False, open_timeout_s=self.open_timeout_s
        )
        try:
            await client.connect()
        except StreamError as error:
            raise SourceError("relay: %s" % error) from None
        self._client = client
        self._frames = client.frames()

    async def read(self) -> bytes:
        assert self._client is not None and self._frames is not None, "open() the relay first"
        try:
            frame = await anext(self._frames)
        except StopAsyncIteration:
            raise SourceError("upstream %s closed the stream; reconnecting" % self.url) from None
        except StreamError as error:
            raise SourceError("upstream %s lost: %s; reconnecting" % (self.url, error)) from None
        if self.width is None:
            self.upstream = self._client.welcome
            self.width = self.upstream.get("width")
            self.height = self.upstream.get("height")
            self.fps = self.upstream.get("fps")
        return frame.jpeg

    async def close(self) -> None:
        client, frames = self._client, self._frames
        self._client = self._frames = None
        if frames is not None:
            await frames.aclose()  # type: ignore[attr-defined]
        if client is not None:
            await client.close()
