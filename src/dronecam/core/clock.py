"""The server's clock seen from a client: its offset from ours, from `clock` round trips (§3.3).

`now_us` is the client side's clock: CPython's monotonic clock in microseconds (on MicroPython
`ticks_us`, which wraps). Frame tags carry the server's clock; adding the offset to a local
arrival time puts both on the server's clock, so latency is arrival minus capture.
"""

from .compat import ticks_us

now_us = ticks_us


class ClockOffset:
    """Server clock minus ours, from the round trip with the least delay.

    The server is taken to read its clock halfway through the round trip, so the estimate is
    off by at most half of the best round trip, and only gets better with more samples.
    """

    def __init__(self) -> None:
        self.offset_us: int | None = None
        self.round_trip_us = -1
        self.sent_us: int | None = None  # the `clock` request in flight, if any

    def sent(self) -> None:
        self.sent_us = now_us()

    def received(self, server_us: int) -> None:
        """The answer to the request in flight (ignored when none is)."""
        if self.sent_us is not None:
            self.add(self.sent_us, now_us(), server_us)
            self.sent_us = None

    def add(self, sent_us: int, received_us: int, server_us: int) -> None:
        """One round trip timed on our clock, and the server's time in its answer."""
        round_trip_us = received_us - sent_us
        if self.round_trip_us < 0 or round_trip_us < self.round_trip_us:
            self.round_trip_us = round_trip_us
            self.offset_us = server_us - (sent_us + received_us) // 2
