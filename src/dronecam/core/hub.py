"""Fan-out of frames from one producer to many consumers, newest frame wins (docs/architecture.md).

The hub keeps one frame: the newest. Publishing wakes every subscription; each one takes the
newest frame when its connection can write, so a slow consumer skips frames (counted as
dropped) instead of queueing them, and never delays the others.
"""

from .compat import ticks_diff, ticks_ms
from .protocol import TAG_SIZE, tag_jpeg_into
from .websocket import OP_BINARY, frame_header_size, write_frame_header


class Frame:
    """One published frame: its sequence number, capture time and wire message.

    `message` is the whole WebSocket binary message (header, then the tagged JPEG), framed
    once and written unchanged to every client; the tagged JPEG starts at `jpeg_offset`.
    """

    def __init__(self, seq: int, capture_us: int, message, jpeg_offset: int) -> None:
        self.seq = seq
        self.capture_us = capture_us
        self.message = message
        self.jpeg_offset = jpeg_offset

    def jpeg(self) -> memoryview:
        return memoryview(self.message)[self.jpeg_offset :]


def build_frame(jpeg, seq: int, capture_us: int, segment=None) -> Frame:
    """Tag and frame a camera JPEG in one new buffer: the one copy each frame costs the host.

    `segment`: a JPEG segment to carry after the tag (the frame's telemetry, §5.3), or None.
    """
    payload_bytes = len(jpeg) + TAG_SIZE + (len(segment) if segment is not None else 0)
    header_bytes = frame_header_size(payload_bytes)
    message = bytearray(header_bytes + payload_bytes)
    write_frame_header(message, 0, OP_BINARY, payload_bytes)
    tag_jpeg_into(message, header_bytes, jpeg, seq, capture_us, segment)
    return Frame(seq, capture_us, message, header_bytes)


class RateMeter:
    """Events per second, recomputed every `window_ms` without allocating."""

    def __init__(self, window_ms: int = 1000) -> None:
        self.window_ms = window_ms
        self.rate = 0.0
        self._count = 0
        self._since_ms = ticks_ms()

    def tick(self, now_ms: int | None = None) -> None:
        self._count += 1
        self.update(now_ms)

    def update(self, now_ms: int | None = None) -> float:
        now = ticks_ms() if now_ms is None else now_ms
        elapsed = ticks_diff(now, self._since_ms)
        if elapsed >= self.window_ms:
            self.rate = self._count * 1000 / elapsed
            self._count = 0
            self._since_ms = now
        return self.rate


class Subscription:
    """One consumer's place at the hub: what it has taken, skipped, and may still take.

    With a credit window (docs/protocol.md §3.4) at most `window` frames are out unacknowledged.
    """

    def __init__(self, hub: "Hub", on_frame) -> None:
        self.hub = hub
        self.on_frame = on_frame
        self.last_seq = 0
        self.frames_sent = 0
        self.frames_dropped = 0
        self.window = 0
        self.unacknowledged = 0
        self.client = True
        self.last_take_ms = ticks_ms()
        self._seen_waiting = False

    def has_credit(self) -> bool:
        return not self.window or self.unacknowledged < self.window

    def take(self):
        """The newest frame this consumer has not had, or None (none newer, or no credit)."""
        frame = self.hub.latest
        if frame is None or frame.seq <= self.last_seq or not self.has_credit():
            return None
        if self.last_seq:
            self.frames_dropped += frame.seq - self.last_seq - 1
        self.last_seq = frame.seq
        self.frames_sent += 1
        if self.window:
            self.unacknowledged += 1
        self.last_take_ms = ticks_ms()
        self._seen_waiting = False
        return frame

    def stream_timed_out(self, now_ms: int, timeout_ms: int) -> bool:
        """True when a newer frame waits and this consumer took none for `timeout_ms` (§1).

        Called once per heartbeat. Whatever the reason (socket full, no credit), a consumer
        is judged only while a frame waits for it, so a stalled camera is never its fault;
        and a frame must already have waited at the previous check, so the first frame after
        a camera stall is not held against a consumer that had no time to take it yet.
        """
        latest = self.hub.latest
        if latest is None or latest.seq <= self.last_seq:
            self._seen_waiting = False
            return False
        if not self._seen_waiting:
            self._seen_waiting = True
            return False
        return ticks_diff(now_ms, self.last_take_ms) > timeout_ms

    def acknowledge(self, frames: int = 1) -> None:
        self.unacknowledged = max(0, self.unacknowledged - frames)

    def set_window(self, frames: int) -> None:
        self.window = frames
        self.unacknowledged = 0


class Hub:
    """Numbers and frames each camera JPEG once, keeps the newest, wakes every subscription.

    Args:
        frame_builder: `(jpeg, seq, capture_us, segment) -> Frame | None`, `build_frame` by
            default; the firmware passes its ring's, which builds into a free preallocated
            slot and returns None when every slot is still being written (the frame is skipped).
        annotate: `(capture_us) -> segment | None`, called at framing time: the bytes of a
            JPEG segment the frame carries after its tag (the telemetry of §5.3), or None.
    """

    def __init__(self, frame_builder=build_frame, annotate=None) -> None:
        self.frame_builder = frame_builder
        self.annotate = annotate
        self.latest: Frame | None = None
        self.frames_published = 0
        self.subscriptions: list[Subscription] = []
        self.clients = 0
        self.rate = RateMeter()

    def publish(self, jpeg, capture_us: int):
        """Frame a checked JPEG as the next seq (§5.1) and hand it to every subscription.

        Returns the Frame, or None when the builder had no room (the seq is not used up).
        """
        segment = self.annotate(capture_us) if self.annotate is not None else None
        frame = self.frame_builder(jpeg, self.frames_published + 1, capture_us, segment)
        if frame is None:
            return None
        self.latest = frame
        self.frames_published += 1
        self.rate.tick()
        for subscription in self.subscriptions:
            subscription.on_frame()
        return frame

    def subscribe(self, on_frame, client: bool = True) -> Subscription:
        """Register a consumer; `on_frame()` is called on each publish and must not block.

        A stream output (a publisher, an encoder) passes `client=False`: it takes frames like
        a client but does not count in `clients` (nor against MAX_CLIENTS).
        """
        subscription = Subscription(self, on_frame)
        subscription.client = client
        self.subscriptions.append(subscription)
        if client:
            self.clients += 1
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self.subscriptions:
            self.subscriptions.remove(subscription)
            if subscription.client:
                self.clients -= 1

    def fps(self) -> float:
        return self.rate.update()
