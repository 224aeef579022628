"""core/clock.py: the server clock's offset from the best round trip (core_checks.py: MicroPython)."""

from core_checks import check_clock

from dronecam.core import clock
from dronecam.core.clock import ClockOffset


def test_the_shared_checks_pass_on_cpython():
    check_clock(clock)


def test_the_least_delayed_round_trip_wins():
    offset = ClockOffset()
    assert offset.offset_us is None
    offset.add(1000, 1400, 50_000)  # 400 us round trip: server 48_800 us ahead
    offset.add(2000, 2100, 51_250)  # 100 us: 49_200 ahead, and better
    offset.add(3000, 3900, 99_999)  # slow, ignored
    assert (offset.offset_us, offset.round_trip_us) == (49_200, 100)


def test_an_answer_without_a_request_in_flight_is_ignored():
    offset = ClockOffset()
    offset.received(123)
    assert offset.offset_us is None
    offset.sent()
    offset.received(clock.now_us())
    assert offset.offset_us is not None and abs(offset.offset_us) < offset.round_trip_us + 1000
    assert offset.sent_us is None
