"""A recording the MAVLink camera starts and stops: fed from the hub, written by one thread."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from ..core.hub import Hub, Subscription
from ..record import Recording

log = logging.getLogger("dronecam.mavlink")


class HubRecording:
    """Newest frame wins: a frame arriving while the last is still being written is skipped."""

    def __init__(self, hub: Hub, path: Path) -> None:
        self.hub = hub
        self.recording = Recording(path)
        self.started = time.monotonic()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dronecam-mavrec")
        self._busy = False
        self._subscription: Subscription | None = hub.subscribe(self._on_frame)

    def _on_frame(self) -> None:
        if self._busy or self._subscription is None:
            return
        frame = self._subscription.take()
        if frame is None:
            return
        self._busy = True
        future = self._writer.submit(self.recording.write, bytes(frame.jpeg()), frame.capture_us)
        future.add_done_callback(self._written)

    def _written(self, future: Future) -> None:
        self._busy = False
        if future.exception() is not None:
            log.warning("[MAVLink] recording %s: %s", self.recording.path, future.exception())

    @property
    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    async def stop(self) -> None:
        """Stop taking frames, let the last write finish, and close the file (playable)."""
        if self._subscription is not None:
            self.hub.unsubscribe(self._subscription)
            self._subscription = None
        await asyncio.to_thread(self._writer.shutdown, True)
        await asyncio.to_thread(self.recording.close)
