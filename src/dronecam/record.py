"""`dronecam record`: a stream to a video file; MJPEG remuxed untouched, or H.264 in `.mp4`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

from .core.protocol import strip_tags

MICROSECONDS = Fraction(1, 1_000_000)
REMUX_SUFFIXES = (".mkv", ".avi")
ENCODE_SUFFIXES = (".mp4",)
H264_ENCODERS = ("libx264", "h264_v4l2m2m", "h264")
# AVI has no timestamps, only a frame rate: a 1 ms tick keeps each frame's time, and the
# muxer fills the ticks between frames with empty chunks (players repeat the last frame).
_AVI_TIME_BASE = Fraction(1, 1000)
# What each JPEG chroma subsampling is called as an ffmpeg pixel format (full range).
_PIXEL_FORMATS = {"420": "yuvj420p", "422": "yuvj422p", "444": "yuvj444p", "Gray": "gray"}


class RecordError(Exception):
    """The recording cannot be made: the message says why."""


def h264_encoder() -> str:
    """The first H.264 encoder this PyAV's ffmpeg has."""
    import av

    for name in H264_ENCODERS:
        try:
            av.codec.Codec(name, "w")
        except Exception:  # PyAV raises UnknownCodecError or ValueError by version
            continue
        return name
    raise RecordError("this PyAV's ffmpeg has no H.264 encoder: record to .mkv instead")


class Recording:
    """A video file being written, one JPEG and its capture time at a time (blocking calls).

    `.mkv` and `.avi` store each JPEG as it came, without the dronecam tags; `.mp4` decodes
    each once and encodes H.264. Timestamps are the frames' capture times from the first
    frame, in microseconds, so a variable frame rate is kept.
    """

    def __init__(self, path: Path) -> None:
        suffix = path.suffix.lower()
        if suffix not in REMUX_SUFFIXES + ENCODE_SUFFIXES:
            raise RecordError("record to .mkv, .avi (JPEGs kept) or .mp4 (H.264), not %s" % path)
        self.path = path
        self.encode = suffix in ENCODE_SUFFIXES
        self.codec = h264_encoder() if self.encode else "mjpeg"
        self.frames = 0
        self.first_us: int | None = None
        self.last_pts = -1
        self._container: Any = None
        self._stream: Any = None
        self._decoder: Any = None

    def _start(self, jpeg: bytes) -> None:
        import av
        import simplejpeg

        try:
            height, width, _colorspace, subsampling = simplejpeg.decode_jpeg_header(jpeg)
        except ValueError as error:
            raise RecordError("the first frame is not a JPEG this can read: %s" % error) from None
        try:
            self._container = av.open(str(self.path), "w")
        except OSError as error:
            raise RecordError("cannot write %s: %s" % (self.path, error.strerror)) from None
        stream = self._container.add_stream(self.codec)
        stream.width, stream.height = width, height
        if self.encode:
            stream.pix_fmt = "yuv420p"
            stream.codec_context.time_base = MICROSECONDS
            self._decoder = av.CodecContext.create("mjpeg", "r")
        else:
            stream.pix_fmt = _PIXEL_FORMATS.get(subsampling, "yuvj420p")
        stream.time_base = _AVI_TIME_BASE if self.path.suffix.lower() == ".avi" else MICROSECONDS
        self._stream = stream

    def write(self, jpeg: bytes, capture_us: int) -> None:
        import av

        jpeg = strip_tags(jpeg)
        if self._container is None:
            self._start(jpeg)
            self.first_us = capture_us
        assert self._stream is not None and self.first_us is not None
        # Timestamps must rise: never less than 1 ms apart (Matroska keeps milliseconds).
        pts = max(capture_us - self.first_us, self.last_pts + 1000 if self.frames else 0)
        self.last_pts = pts
        if self.encode:
            assert self._decoder is not None
            for frame in self._decoder.decode(av.Packet(jpeg)):
                frame.pts = pts
                frame.time_base = MICROSECONDS
                self._mux(self._stream.encode(frame))
        else:
            packet = av.Packet(jpeg)
            packet.pts = packet.dts = pts
            packet.time_base = MICROSECONDS
            packet.stream = self._stream
            self._container.mux(packet)
        self.frames += 1

    def _mux(self, packets) -> None:
        assert self._container is not None
        for packet in packets:
            self._container.mux(packet)

    def close(self) -> None:
        """Flush the encoder and write the index: the file is complete and playable."""
        if self._container is None:
            return
        if self.encode:
            assert self._stream is not None
            self._mux(self._stream.encode(None))
        self._container.close()
        self._container = None

    @property
    def bytes_written(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0


class RecordResult:
    """How a recording ended: frames kept, seconds of video, and why it stopped."""

    def __init__(self, path: Path, frames: int, seconds: float, reason: str) -> None:
        self.path = path
        self.frames = frames
        self.seconds = seconds
        self.reason = reason


async def record(
    url: str,
    out: Path,
    duration_s: float | None = None,
    max_frames: int | None = None,
    on_frame: Callable[[Recording], None] | None = None,
    window: int | None = 2,
) -> RecordResult:
    """Record the stream at `url` into `out` until the duration or frame count is reached,
    the connection is lost, or the task is cancelled (Ctrl-C); the file is closed cleanly
    in every case.

    Raises:
        RecordError: the output cannot be written.
        StreamError: the server cannot be reached at all.
    """
    from .client import StreamClient, StreamError

    recording = Recording(out)
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dronecam-record")
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    reason = "stopped"
    try:
        async with StreamClient(url, window=window) as client:
            deadline = None if duration_s is None else started + duration_s
            frames = client.frames()
            while True:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    reason = "duration reached"
                    break
                try:
                    frame = await asyncio.wait_for(anext(frames), remaining)
                except TimeoutError:
                    reason = "duration reached"
                    break
                except StopAsyncIteration:
                    reason = "the server closed the stream"
                    break
                except StreamError as error:
                    reason = "connection lost: %s" % error
                    break
                capture_us = frame.capture_us or frame.received_us
                await loop.run_in_executor(writer, recording.write, frame.jpeg, capture_us)
                if on_frame is not None:
                    on_frame(recording)
                if max_frames is not None and recording.frames >= max_frames:
                    reason = "%d frames recorded" % recording.frames
                    break
    except asyncio.CancelledError:
        reason = "interrupted"
        raise
    finally:
        # One worker: a write still running finishes before the file is closed.
        writer.shutdown(wait=True)
        recording.close()
    seconds = recording.last_pts / 1e6 if recording.frames else 0.0
    return RecordResult(out, recording.frames, seconds, reason)
