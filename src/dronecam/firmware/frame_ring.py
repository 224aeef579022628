"""Frames in flight on the device: a few preallocated slots, each framed once for all clients."""

from dronecam.core.hub import Frame
from dronecam.core.protocol import TAG_SIZE, tag_jpeg_into
from dronecam.core.telemetry import TELEMETRY_SIZE
from dronecam.core.websocket import MAX_HEADER_SIZE, OP_BINARY, write_frame_header


class SlotFrame(Frame):
    """A Frame whose message lives in a fixed slot: `length` bytes are valid, `pins` writers."""

    def __init__(self, capacity):
        super().__init__(0, 0, bytearray(capacity), 0)
        self.view = memoryview(self.message)
        self.length = 0
        self.pins = 0

    def jpeg(self):
        return self.view[self.jpeg_offset : self.length]


class FrameRing:
    """The feed's frame builder: copies each camera frame once into a slot nobody is writing.

    The camera's buffer is reused at the next capture, so the copy is needed once; clients
    then write the same slot. When every slot is pinned by a client still writing it, the
    camera frame is skipped (counted) rather than allocating another buffer.
    """

    def __init__(self, slots, max_frame_bytes):
        capacity = MAX_HEADER_SIZE + TAG_SIZE + TELEMETRY_SIZE + max_frame_bytes
        self.frames = [SlotFrame(capacity) for _ in range(slots)]
        self.skipped = 0
        self.on_full = None  # called when a frame is skipped: the server frees a slot
        self._next = 0

    def build(self, jpeg, seq, capture_us, segment=None):
        frames = self.frames
        for _ in range(len(frames)):
            frame = frames[self._next]
            self._next = (self._next + 1) % len(frames)
            if not frame.pins:
                break
        else:
            self.skipped += 1
            if self.on_full is not None:
                self.on_full()
            return None
        extra = len(segment) if segment is not None else 0
        header = write_frame_header(frame.message, 0, OP_BINARY, len(jpeg) + TAG_SIZE + extra)
        frame.length = tag_jpeg_into(frame.message, header, jpeg, seq, capture_us, segment)
        frame.seq = seq
        frame.capture_us = capture_us
        frame.jpeg_offset = header
        return frame
