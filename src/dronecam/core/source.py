"""What a camera source is, and the feed that pumps it into the hub with a watchdog (§6).

A source has three coroutines: `open()`, `read()` (the next JPEG, paced by the source) and
`close()`. The feed stamps and checks each frame and publishes it; the hub numbers, tags and
frames it. A source that raises, stalls or sends bad frames is closed and reopened with
backoff while clients stay connected.
"""

import asyncio

from .compat import MonotonicClock, ticks_diff, ticks_ms
from .hub import Hub
from .protocol import (
    CAMERA_FAILED,
    CAMERA_OK,
    CAMERA_STALLED,
    CAMERA_STARTING,
    CAMERA_WAITING,
    DEFAULT_HEIGHT,
    DEFAULT_QUALITY,
    DEFAULT_WIDTH,
    MAX_FRAME_SIZE,
    check_jpeg,
    frame_bytes_limit,
)


class SourceError(Exception):
    """A camera or input problem, worded for the user: what failed and what to do."""


class FeedSettings:
    """How the feed judges a source: frame limit, stall timeout, bad-frame tolerance, backoff.

    `max_frame_bytes` None: the limit follows the source's frame size and `quality`
    (`protocol.frame_bytes_limit`), logged when chosen. `frame_limit_name` is what the user
    sets it with, named in the oversized-frame error.
    """

    def __init__(
        self,
        max_frame_bytes: int | None = MAX_FRAME_SIZE,
        stall_timeout_ms: int = 2000,
        bad_frames_before_restart: int = 5,
        retry_min_ms: int = 250,
        retry_max_ms: int = 8000,
        quality: int = DEFAULT_QUALITY,
        frame_limit_name: str = "--max-frame-bytes",
    ) -> None:
        self.max_frame_bytes = max_frame_bytes
        self.quality = quality
        self.frame_limit_name = frame_limit_name
        self.stall_timeout_ms = stall_timeout_ms
        self.bad_frames_before_restart = bad_frames_before_restart
        self.retry_min_ms = retry_min_ms
        self.retry_max_ms = retry_max_ms


class Pacer:
    """Waits for frame deadlines on the monotonic clock: no drift, and no burst after a stall."""

    def __init__(self, fps: float) -> None:
        self.period_ms = 1000 / fps
        self._start_ms = ticks_ms()
        self._frames = 0

    async def wait(self) -> None:
        self._frames += 1
        due_ms = self._frames * self.period_ms
        late_ms = ticks_diff(ticks_ms(), self._start_ms) - due_ms
        if late_ms > self.period_ms:
            self._start_ms = ticks_ms()
            self._frames = 0
        elif late_ms < 0:
            await asyncio.sleep(-late_ms / 1000)


class Feed:
    """Reads a source into a hub: the camera's state, counters and watchdog."""

    def __init__(
        self,
        source,
        hub: Hub,
        settings: FeedSettings | None = None,
        clock: MonotonicClock | None = None,
        log=print,
    ) -> None:
        self.source = source
        self.hub = hub
        self.settings = settings or FeedSettings()
        self.clock = clock or MonotonicClock()
        self.log = log
        self.state = CAMERA_STARTING
        self.last_error = ""
        self.frames_rejected = 0
        self.restarts = 0
        self._opened = False
        self._progress_ms = 0
        self._limit_size = (0, 0)  # the frame size the automatic frame limit is for
        self._limit_bytes = MAX_FRAME_SIZE

    async def open(self) -> None:
        """Open the source once, letting its SourceError reach the caller (start-up checks)."""
        await self.source.open()
        self._opened = True

    async def run(self) -> None:
        """Publish frames forever; on a fault report it, reopen with backoff, go on."""
        backoff_ms = self.settings.retry_min_ms
        while True:
            self._progress_ms = ticks_ms()
            pump = asyncio.create_task(self._pump())
            try:
                stalled = await self._watch(pump)
            except BaseException:  # cancelled, or out of memory on the device: no pump left behind
                pump.cancel()
                await self._close()
                raise
            if self.state == CAMERA_OK:  # it streamed since the last fault: retry soon again
                backoff_ms = self.settings.retry_min_ms
            if stalled:
                self._fault(CAMERA_STALLED, "no frame for %d ms" % self.settings.stall_timeout_ms)
            else:
                error = await pump
                if error is None:
                    self._fault(CAMERA_FAILED, "too many bad frames (%s)" % self.last_error)
                else:
                    self._fault(CAMERA_FAILED, str(error) or type(error).__name__)
            await self._close()
            await asyncio.sleep(backoff_ms / 1000)
            backoff_ms = min(2 * backoff_ms, self.settings.retry_max_ms)

    async def _watch(self, pump) -> bool:
        """Wait for the pump to end; cancel it and return True if the source stalls.

        A watchdog task instead of `wait_for` around each read: no task per frame, and no
        cancellation lost to the race that `wait_for` has on CPython 3.11.
        """
        timeout_ms = self.settings.stall_timeout_ms
        while not pump.done():
            await asyncio.sleep(min(timeout_ms, 250) / 1000)
            if self._waiting():
                continue
            if not pump.done() and ticks_diff(ticks_ms(), self._progress_ms) > timeout_ms:
                pump.cancel()
                try:
                    await pump
                except asyncio.CancelledError:
                    pass
                return True
        return False

    async def _pump(self):
        """Read and publish until too many bad frames in a row (None) or an error (returned).

        The error is returned, not raised: MicroPython reports an exception raised in a task
        that nobody awaits yet as unhandled, although the watchdog awaits it just after.
        """
        try:
            await self._read_frames()
        except Exception as error:  # a source may fail in any way; the feed reports it
            return error
        return None

    async def _read_frames(self) -> None:
        if not self._opened:
            await self.source.open()
            self._opened = True
        bad_in_a_row = 0
        while bad_in_a_row < self.settings.bad_frames_before_restart:
            jpeg = await self.source.read()
            self._progress_ms = ticks_ms()
            capture_us = self.clock.now_us()
            limit = self.settings.max_frame_bytes
            if limit is None:
                limit = self._frame_limit()
            reason = check_jpeg(jpeg, limit)
            if reason:
                self.frames_rejected += 1
                if reason == "oversized":
                    self.last_error = "oversized frame (%d bytes > %d; raise %s)" % (
                        len(jpeg),
                        limit,
                        self.settings.frame_limit_name,
                    )
                else:
                    self.last_error = "%s frame (%d bytes)" % (reason, len(jpeg))
                bad_in_a_row += 1
                continue
            bad_in_a_row = 0
            if self.state != CAMERA_OK:
                self.log("[Camera] streaming (%s)" % getattr(self.source, "name", "camera"))
                self.state = CAMERA_OK
            self.hub.publish(jpeg, capture_us)

    def _waiting(self) -> bool:
        """True while the source says it waits for its input (a relay for its upstream):
        not a stall. The state is logged once on the way in; streaming again logs once."""
        waiting = getattr(self.source, "waiting", None)
        if not waiting:
            return False
        self._progress_ms = ticks_ms()
        self.last_error = waiting
        if self.state != CAMERA_WAITING:
            self.state = CAMERA_WAITING
            self.log("[Camera] waiting: %s" % waiting)
        return True

    def _frame_limit(self) -> int:
        """The automatic frame limit for the source's frame size, logged when it changes
        (a relay learns its upstream's size from the welcome)."""
        size = (
            getattr(self.source, "width", None) or DEFAULT_WIDTH,
            getattr(self.source, "height", None) or DEFAULT_HEIGHT,
        )
        if size != self._limit_size:
            self._limit_size = size
            self._limit_bytes = frame_bytes_limit(size[0], size[1], self.settings.quality)
            self.log(
                "[Camera] frames up to %d bytes at %dx%d (%s to change)"
                % (self._limit_bytes, size[0], size[1], self.settings.frame_limit_name)
            )
        return self._limit_bytes

    def _fault(self, state: str, message: str) -> None:
        repeated = state == self.state and message == self.last_error
        self.state = state
        self.last_error = message
        self.restarts += 1
        if not repeated:  # a camera that stays away is said once, not once per try
            self.log("[Camera] %s: %s; re-initialising" % (state, message))

    async def _close(self) -> None:
        if self._opened:
            self._opened = False
            try:
                await self.source.close()
            except Exception as error:  # closing a broken camera may fail too; nothing to add
                self.log("[Camera] close failed: %s" % error)

    def status(self) -> dict:
        """The camera fields heartbeats and stats carry."""
        status = {
            "camera": self.state,
            "frames_rejected": self.frames_rejected,
            "camera_restarts": self.restarts,
        }
        if self.state != CAMERA_OK and self.last_error:
            status["camera_error"] = self.last_error
        source_status = getattr(self.source, "status", None)
        if source_status is not None:  # a relay or an edge: its upstream's state
            status.update(source_status())
        return status
