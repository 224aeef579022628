"""accept() failures (out of file descriptors) reported once a while, not once per failure.

asyncio reports each failed `accept()` to the loop's exception handler, which logs a traceback
by default, and (Python 3.11-3.13) goes on trying up to the backlog in the same loop turn:
with the descriptors used up, that was tens of thousands of tracebacks a second. uvloop
reports each failure of its listen callback the same way. Both keep listening.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Callable
from typing import Any

from ..core.compat import ticks_diff, ticks_ms

log = logging.getLogger("dronecam.server")

OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
REPORT_INTERVAL_MS = 10000


def is_accept_failure(context: dict[str, Any]) -> bool:
    error = context.get("exception")
    message = context.get("message", "")
    return (
        isinstance(error, OSError)
        and error.errno in OUT_OF_RESOURCES
        and ("accept" in message or "listen" in message)
    )


class AcceptErrors:
    """A loop exception handler: accept failures counted and logged once per interval, the
    rest passed on to the handler that was there before.

    Args:
        on_failure: called at each failure (the server drops clients it is done with).
    """

    def __init__(self, on_failure: Callable[[], None]) -> None:
        self.on_failure = on_failure
        self.failures = 0
        self._unreported = 0
        self._reported_ms: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: Callable[..., object] | None = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._previous = loop.get_exception_handler()
        loop.set_exception_handler(self._handle)

    def uninstall(self) -> None:
        if self._loop is not None and self._loop.get_exception_handler() == self._handle:
            self._loop.set_exception_handler(self._previous)
        self._loop = None

    def _handle(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if not is_accept_failure(context):
            if self._previous is not None:
                self._previous(loop, context)
            else:
                loop.default_exception_handler(context)
            return
        self.failures += 1
        self._unreported += 1
        now_ms = ticks_ms()
        if self._reported_ms is None or ticks_diff(now_ms, self._reported_ms) >= REPORT_INTERVAL_MS:
            error = context["exception"]
            log.error(
                "[VideoStreamServer] cannot accept connections: %s (%d times since the last "
                "report); new clients wait. Raise the open-file limit (ulimit -n) if this lasts",
                error.strerror or error,
                self._unreported,
            )
            self._reported_ms = now_ms
            self._unreported = 0
        self.on_failure()
