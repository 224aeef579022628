"""The newest-frame hand-off from a camera's callback or thread to `read()` (slot + Event)."""

from __future__ import annotations

import asyncio


class FrameSlot:
    """Holds the newest frame (or the error that stopped the camera); older ones are overwritten.

    `put` and `fail` run on the event loop; a camera thread uses `put_threadsafe`.
    """

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._ready = asyncio.Event()
        self._item: object = None
        self._error: BaseException | None = None
        self.overwritten = 0

    def put(self, item: object) -> None:
        if self._ready.is_set():
            self.overwritten += 1
        self._item = item
        self._ready.set()

    def put_threadsafe(self, item: object) -> None:
        self._loop.call_soon_threadsafe(self.put, item)

    def fail(self, error: BaseException) -> None:
        self._error = error
        self._ready.set()

    async def take(self) -> object:
        await self._ready.wait()
        self._ready.clear()
        if self._error is not None:
            raise self._error
        item, self._item = self._item, None
        return item
