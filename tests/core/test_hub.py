"""core/hub.py: newest frame wins, drops counted, credit window, rate."""

from dronecam.core import protocol
from dronecam.core.hub import Hub, RateMeter, build_frame
from dronecam.core.websocket import frame_header


def _publish(hub: Hub, count: int = 1) -> None:
    for _ in range(count):
        hub.publish(b"\xff\xd8jpeg\xff\xd9", (hub.frames_published + 1) * 1000)


def test_build_frame_is_one_message_for_everyone():
    frame = build_frame(b"\xff\xd8jpeg\xff\xd9", 7, 99)
    payload_bytes = 8 + protocol.TAG_SIZE
    assert bytes(frame.message[: frame.jpeg_offset]) == frame_header(0x2, payload_bytes)
    assert protocol.read_tag(frame.jpeg()) == (7, 99)


def test_newest_frame_wins_and_skips_are_counted():
    hub = Hub()
    woken = []
    fast = hub.subscribe(lambda: woken.append(fast.take()))
    slow = hub.subscribe(lambda: None)
    _publish(hub, 5)
    assert [frame.seq for frame in woken] == [1, 2, 3, 4, 5]
    assert slow.take().seq == 5 and slow.frames_dropped == 0  # nothing before its first frame
    _publish(hub, 4)
    assert slow.take().seq == 9 and slow.frames_dropped == 3
    assert slow.take() is None
    assert fast.frames_dropped == 0 and fast.frames_sent == 9


def test_credit_window_bounds_frames_in_flight():
    hub = Hub()
    subscription = hub.subscribe(lambda: None)
    subscription.set_window(2)
    _publish(hub)
    assert subscription.take().seq == 1
    _publish(hub)
    assert subscription.take().seq == 2
    _publish(hub)
    assert subscription.take() is None  # two unacknowledged
    subscription.acknowledge()
    assert subscription.take().seq == 3
    subscription.acknowledge(5)
    assert subscription.unacknowledged == 0


def test_unsubscribe_stops_wakeups():
    hub = Hub()
    calls = []
    subscription = hub.subscribe(lambda: calls.append(1))
    hub.unsubscribe(subscription)
    hub.unsubscribe(subscription)
    _publish(hub)
    assert not calls and not hub.subscriptions


def test_rate_meter_counts_per_window():
    meter = RateMeter(window_ms=1000)
    start = meter._since_ms
    for i in range(30):
        meter.tick(start + i * 33)
    assert meter.update(start + 1000) == 30.0
    assert meter.update(start + 2500) == 0.0


def test_the_hub_numbers_frames_and_a_full_builder_uses_no_seq():
    built = []

    def builder(jpeg, seq, capture_us, segment):
        built.append((seq, capture_us))
        return None if seq == 2 and len(built) == 2 else build_frame(jpeg, seq, capture_us)

    hub = Hub(builder)
    assert hub.publish(b"\xff\xd8a\xff\xd9", 10).seq == 1
    assert hub.publish(b"\xff\xd8b\xff\xd9", 20) is None  # no room: skipped, seq 2 kept
    frame = hub.publish(b"\xff\xd8c\xff\xd9", 30)
    assert built == [(1, 10), (2, 20), (2, 30)]
    assert hub.latest is frame and hub.frames_published == 2
    assert protocol.read_tag(frame.jpeg()) == (2, 30)


def test_annotate_puts_a_segment_after_the_tag_of_every_frame():
    from dronecam.core.protocol import read_tag, strip_tags

    segment = b"\xff\xfe\x00\x06test"
    hub = Hub(annotate=lambda capture_us: segment if capture_us > 10 else None)
    plain = hub.publish(b"\xff\xd8jpeg\xff\xd9", 10)
    annotated = hub.publish(b"\xff\xd8jpeg\xff\xd9", 20)
    assert bytes(plain.jpeg()) == bytes(plain.jpeg()[:23]) + b"jpeg\xff\xd9"
    assert bytes(annotated.jpeg()[23:]) == segment + b"jpeg\xff\xd9"
    assert read_tag(annotated.jpeg()) == (2, 20)
    assert strip_tags(annotated.jpeg()) == b"\xff\xd8" + segment + b"jpeg\xff\xd9"


def test_stream_timeout_judges_only_a_frame_that_waits():
    hub = Hub()
    subscription = hub.subscribe(lambda: None)
    _publish(hub)
    subscription.take()
    taken_ms = subscription.last_take_ms
    # Behind a stalled camera: nothing newer, never timed out however long.
    assert not subscription.stream_timed_out(taken_ms + 60_000, 5000)
    _publish(hub)  # the camera is back: the frame must wait one check before it counts
    assert not subscription.stream_timed_out(taken_ms + 60_000, 5000)
    assert subscription.stream_timed_out(taken_ms + 60_001, 5000)
    assert not subscription.stream_timed_out(taken_ms + 5000, 5000)  # not longer than 5 s


def test_a_client_without_credit_times_out_once_frames_wait():
    hub = Hub()
    subscription = hub.subscribe(lambda: None)
    subscription.set_window(1)
    _publish(hub)
    subscription.take()
    start_ms = subscription.last_take_ms
    _publish(hub, 3)
    assert subscription.take() is None  # out of credit
    assert not subscription.stream_timed_out(start_ms + 100, 5000)
    assert subscription.stream_timed_out(start_ms + 5100, 5000)
    subscription.acknowledge()
    assert subscription.take().seq == 4
    assert not subscription.stream_timed_out(start_ms + 5200, 5000)
