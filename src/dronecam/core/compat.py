"""Every difference between CPython and MicroPython that core/ relies on, in one place."""

try:  # MicroPython
    from time import ticks_diff, ticks_ms, ticks_us  # type: ignore[attr-defined]

    from micropython import const  # type: ignore[import-not-found]
except ImportError:  # CPython
    import time as _time

    def const(value):  # type: ignore[no-redef]
        return value

    def ticks_ms() -> int:  # type: ignore[no-redef]
        return _time.monotonic_ns() // 1_000_000

    def ticks_us() -> int:  # type: ignore[no-redef]
        return _time.monotonic_ns() // 1_000

    def ticks_diff(newer: int, older: int) -> int:  # type: ignore[no-redef]
        return newer - older


class MonotonicClock:
    """Microseconds since this clock was made, never wrapping (MicroPython's ticks wrap)."""

    def __init__(self) -> None:
        self._last_tick = ticks_us()
        self._elapsed_us = 0

    def now_us(self) -> int:
        tick = ticks_us()
        self._elapsed_us += ticks_diff(tick, self._last_tick)
        self._last_tick = tick
        return self._elapsed_us

    def now_ms(self) -> int:
        return self.now_us() // 1000
