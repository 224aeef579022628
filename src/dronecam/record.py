"""`dronecam record`: a stream to a video file; MJPEG remuxed untouched, or H.264 in `.mp4`.

Frames that carry telemetry (docs/protocol.md §5.3) also give a subtitle track in `.mkv`
(position, altitude, speed, heading for each frame, as DJI's SRT files do) and a sidecar
`NAME.telemetry.jsonl` beside any recording: one JSON line per frame with its seq, capture
time and full state.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

from .core.protocol import read_tag, strip_tags
from .core.telemetry import Telemetry, read_telemetry

MICROSECONDS = Fraction(1, 1_000_000)
REMUX_SUFFIXES = (".mkv", ".avi")
ENCODE_SUFFIXES = (".mp4",)
H264_ENCODERS = ("libx264", "h264_v4l2m2m", "h264")
# AVI has no timestamps, only a frame rate: a 1 ms tick keeps each frame's time, and the
# muxer fills the ticks between frames with empty chunks (players repeat the last frame).
_AVI_TIME_BASE = Fraction(1, 1000)
# What each JPEG chroma subsampling is called as an ffmpeg pixel format (full range).
_PIXEL_FORMATS = {"420": "yuvj420p", "422": "yuvj422p", "444": "yuvj444p", "Gray": "gray"}
_MILLISECONDS = Fraction(1, 1000)
SIDECAR_SUFFIX = ".telemetry.jsonl"


def sidecar_path(path: Path) -> Path:
    """Where a recording's telemetry goes: flight.mkv -> flight.telemetry.jsonl."""
    return path.with_suffix(SIDECAR_SUFFIX)


def subtitle_text(telemetry: Telemetry | None) -> str:
    """One frame's subtitle: position, altitudes, speed, heading (what is known of them)."""
    if telemetry is None:
        return "no telemetry"
    lines = []
    if telemetry.lat_deg is not None and telemetry.lon_deg is not None:
        lines.append("GPS %.6f, %.6f" % (telemetry.lat_deg, telemetry.lon_deg))
    altitudes = []
    if telemetry.alt_rel_m is not None:
        altitudes.append("ALT %.1f m" % telemetry.alt_rel_m)
    if telemetry.alt_msl_m is not None:
        altitudes.append("MSL %.1f m" % telemetry.alt_msl_m)
    if altitudes:
        lines.append("  ".join(altitudes))
    if telemetry.groundspeed_mps is not None and telemetry.heading_deg is not None:
        lines.append(
            "SPD %.1f m/s  HDG %03.0f  VS %+.1f m/s"
            % (telemetry.groundspeed_mps, telemetry.heading_deg, telemetry.climb_mps or 0.0)
        )
    return "\n".join(lines) or "no position"


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

    def __init__(self, path: Path, overwrite: bool = False) -> None:
        suffix = path.suffix.lower()
        if suffix not in REMUX_SUFFIXES + ENCODE_SUFFIXES:
            raise RecordError("record to .mkv, .avi (JPEGs kept) or .mp4 (H.264), not %s" % path)
        if not path.parent.is_dir():
            raise RecordError("cannot write %s: there is no folder %s" % (path, path.parent))
        for taken in (path, sidecar_path(path)):
            if taken.is_file() and not overwrite:
                raise RecordError(
                    "%s exists; add --overwrite (overwrite=True) to replace it" % taken
                )
        self.overwrite = overwrite
        import av  # noqa: F401 (now, not at the first frame: the import takes 0.3 s, frames go on)

        self.path = path
        self.encode = suffix in ENCODE_SUFFIXES
        self.codec = h264_encoder() if self.encode else "mjpeg"
        self.frames = 0
        self.bytes_muxed = 0
        self.first_us: int | None = None
        self.last_pts = -1
        self._container: Any = None
        self._stream: Any = None
        self._decoder: Any = None
        self._subtitles: Any = None
        self._pending_subtitle: tuple[int, str] | None = None  # (pts ms, text), until the next
        self._sidecar: Any = None
        self.sidecar_path = sidecar_path(path)

    def _start(self, jpeg: bytes) -> None:
        import av
        import simplejpeg

        try:
            height, width, _colorspace, subsampling = simplejpeg.decode_jpeg_header(jpeg)
        except ValueError as error:
            raise RecordError("the first frame is not a JPEG this can read: %s" % error) from None
        try:  # first, and never over an existing file unless asked: it tells a recording was here
            self._sidecar = open(self.sidecar_path, "w" if self.overwrite else "x")
        except OSError as error:
            raise RecordError(
                "cannot write %s: %s" % (self.sidecar_path, error.strerror or error)
            ) from None
        try:
            self._container = av.open(str(self.path), "w")
        except OSError as error:
            self._sidecar.close()
            self.sidecar_path.unlink()
            raise RecordError(
                "cannot write %s: %s" % (self.path, error.strerror or error)
            ) from None
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
        if self.path.suffix.lower() == ".mkv":
            self._subtitles = self._container.add_stream("subrip")
            self._subtitles.time_base = _MILLISECONDS
            # ffmpeg's SubRip encoder opens only with a header, though SubRip has none.
            self._subtitles.codec_context.subtitle_header = b"[Script Info]\n"

    def write(self, jpeg: bytes, capture_us: int) -> None:
        import av

        tag = read_tag(jpeg)
        telemetry = read_telemetry(jpeg)
        jpeg = strip_tags(jpeg)
        if self._container is None:
            self._start(jpeg)
            self.first_us = capture_us
        assert self._stream is not None and self.first_us is not None
        # Timestamps must rise: never less than 1 ms apart (Matroska keeps milliseconds).
        pts = max(capture_us - self.first_us, self.last_pts + 1000 if self.frames else 0)
        self.last_pts = pts
        self._write_telemetry(tag[0] if tag else self.frames + 1, capture_us, pts, telemetry)
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
            self.bytes_muxed += packet.size
            self._container.mux(packet)
        self.frames += 1

    def _write_telemetry(self, seq: int, capture_us: int, pts_us: int, telemetry) -> None:
        record: dict[str, Any] = {"seq": seq, "capture_us": capture_us, "pts_us": pts_us}
        record.update(telemetry.as_dict() if telemetry is not None else {"telemetry": None})
        self._sidecar.write(json.dumps(record) + "\n")
        if self._subtitles is not None:
            pts_ms = (pts_us + 500) // 1000  # as Matroska rounds the video's timestamps
            self._flush_subtitle(pts_ms)
            self._pending_subtitle = (pts_ms, subtitle_text(telemetry))

    def _flush_subtitle(self, until_ms: int) -> None:
        """Mux the waiting subtitle, shown until `until_ms` (the next frame's time)."""
        import av

        if self._pending_subtitle is None:
            return
        start_ms, text = self._pending_subtitle
        packet = av.Packet(text.encode())
        packet.pts = packet.dts = start_ms
        packet.duration = max(1, until_ms - start_ms)
        packet.time_base = _MILLISECONDS
        packet.stream = self._subtitles
        self._container.mux(packet)
        self._pending_subtitle = None

    def _mux(self, packets) -> None:
        assert self._container is not None
        for packet in packets:
            self.bytes_muxed += packet.size
            self._container.mux(packet)

    def close(self) -> None:
        """Flush the encoder and write the index: the file is complete and playable."""
        if self._container is None:
            return
        if self.encode:
            assert self._stream is not None
            self._mux(self._stream.encode(None))
        if self._pending_subtitle is not None:
            self._flush_subtitle(self._pending_subtitle[0] + 33)
        self._container.close()
        self._container = None
        if self._sidecar is not None:
            self._sidecar.close()
            self._sidecar = None

    @property
    def bytes_written(self) -> int:
        """Video data muxed so far: the file's size lags behind it (the muxer buffers)."""
        return self.bytes_muxed

    @property
    def seconds(self) -> float:
        return self.last_pts / 1e6 if self.frames else 0.0


class RecordResult:
    """How a recording ended: frames kept, seconds of video, gaps, and why it stopped.

    `gaps` are the link drops the recording went on across: (at seconds of video, gap s).
    """

    def __init__(
        self,
        path: Path,
        frames: int,
        seconds: float,
        reason: str,
        gaps: list[tuple[float, float]] | None = None,
    ) -> None:
        self.path = path
        self.frames = frames
        self.seconds = seconds
        self.reason = reason
        self.gaps = gaps or []


def file_size(size_bytes: int) -> str:
    """Bytes in decimal units, as file managers show them: 950 kB, 1.23 MB, 2.05 GB."""
    if size_bytes < 1_000_000:
        return "%d kB" % round(size_bytes / 1000)
    if size_bytes < 1_000_000_000:
        return "%.2f MB" % (size_bytes / 1e6)
    return "%.2f GB" % (size_bytes / 1e9)


async def record(
    url: str,
    out: Path,
    duration_s: float | None = None,
    max_frames: int | None = None,
    on_frame: Callable[[Recording], None] | None = None,
    window: int | None = 2,
    *,
    overwrite: bool = False,
    reconnect: bool = True,
    on_event: Callable[[str], None] | None = None,
    backoff_min_s: float = 0.25,
    backoff_max_s: float = 2.0,
) -> RecordResult:
    """Record the stream at `url` into `out` until the duration or frame count is reached,
    or the task is cancelled (Ctrl-C); the file is closed cleanly in every case.

    A lost link is reconnected with backoff, 0.25 s doubling to 2 s (unless `reconnect` is
    False: then it ends the recording) and the recording goes on in the same file. Frames keep their capture times
    on this machine's clock, so the gap is in the file as it happened; `on_event` is told
    of each drop and return.

    Raises:
        RecordError: the output cannot be written, or exists and `overwrite` is False.
        StreamError: the server cannot be reached at all when the recording starts.
    """
    from .client import ReceivedFrame, StreamClient, StreamError

    if duration_s is not None and not duration_s > 0:
        raise ValueError("the duration must be above 0 seconds")
    if max_frames is not None and max_frames < 1:
        raise ValueError("record at least one frame")
    recording = Recording(out, overwrite)
    tell = on_event or (lambda message: None)
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dronecam-record")
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    reason = "stopped"
    gaps: list[tuple[float, float]] = []
    lost_at_us: int | None = None  # this machine's clock when the last frame before a drop came
    last_frame_us = 0
    client = StreamClient(
        url,
        window=window,
        reconnect=reconnect,
        backoff_min_s=backoff_min_s,
        backoff_max_s=backoff_max_s,
    )
    try:
        await client.connect()
        deadline = None if duration_s is None else started + duration_s
        items = aiter(client)
        while True:
            try:
                item = await _next_before(items, deadline)
            except TimeoutError:
                reason = "duration reached"
                break
            except StopAsyncIteration:
                reason = "the server closed the stream"
                break
            except StreamError as error:
                reason = str(error)
                break
            if not isinstance(item, ReceivedFrame):
                if item.type == "disconnected" and lost_at_us is None:
                    lost_at_us = last_frame_us
                    tell(
                        "link lost at %.1f s of video (%s); reconnecting"
                        % (recording.seconds, item.data["reason"])
                    )
                continue
            # The capture time on this machine's clock: the server's stamp less the clock
            # offset. A restarted server's clock starts again; this one runs on.
            offset_us = client.clock_offset_us
            if item.capture_us and offset_us is not None:
                local_us = item.capture_us - offset_us
            else:
                local_us = item.received_us
            if lost_at_us is not None:
                gap_s = max(0.0, (local_us - lost_at_us) / 1e6)
                gaps.append((recording.seconds, gap_s))
                tell("link back: %.1f s gap at %.1f s of video" % (gap_s, recording.seconds))
                lost_at_us = None
            last_frame_us = local_us
            await loop.run_in_executor(writer, recording.write, item.jpeg, local_us)
            if on_frame is not None:
                on_frame(recording)
            if max_frames is not None and recording.frames >= max_frames:
                reason = "%d frames recorded" % recording.frames
                break
    except asyncio.CancelledError:
        reason = "interrupted"
        raise
    finally:
        await client.close()
        # One worker: a write still running finishes before the file is closed.
        writer.shutdown(wait=True)
        recording.close()
    return RecordResult(out, recording.frames, recording.seconds, reason, gaps)


async def record_nats(
    url: str,
    out: Path,
    since_s: float = 0,
    duration_s: float | None = None,
    max_frames: int | None = None,
    on_frame: Callable[[Recording], None] | None = None,
    *,
    overwrite: bool = False,
) -> RecordResult:
    """Record a camera on NATS (`nats://HOST:PORT/NAME`): the last `since_s` seconds its
    replay stream kept, then live, until `duration_s` has passed or the frame count is reached
    or the task is cancelled; the file is closed cleanly in every case.

    Raises:
        RecordError: the output cannot be written.
        BusError: NATS unreachable, or no replay of that camera when `since_s` is given.
    """
    from . import bus

    address = bus.NatsAddress(url)
    recording = Recording(out, overwrite)
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dronecam-record")
    loop = asyncio.get_running_loop()
    reason = "stopped"
    client = None
    try:
        client = await bus.connect(address, "dronecam-record")
        if since_s:
            subscription = await bus.history(client, address, since_s)
        else:
            camera = bus.one_camera(address)
            subscription = await client.subscribe(bus.frames_subject(camera), pending_msgs_limit=4)
        deadline = None if duration_s is None else time.monotonic() + duration_s
        messages = aiter(subscription.messages)
        while True:
            try:
                message = await _next_before(messages, deadline)
            except TimeoutError:
                reason = "duration reached"
                break
            tag = read_tag(message.data)
            if tag is None or not bus.is_dronecam_frame(message.data, 16 * 1024 * 1024):
                continue
            await loop.run_in_executor(writer, recording.write, message.data, tag[1])
            if on_frame is not None:
                on_frame(recording)
            if max_frames is not None and recording.frames >= max_frames:
                reason = "%d frames recorded" % recording.frames
                break
    except asyncio.CancelledError:
        reason = "interrupted"
        raise
    finally:
        writer.shutdown(wait=True)
        recording.close()
        if client is not None:
            await client.close()
    seconds = recording.last_pts / 1e6 if recording.frames else 0.0
    return RecordResult(out, recording.frames, seconds, reason)


async def _next_before(items, deadline: float | None):
    """The next item of an async iterator; TimeoutError once the monotonic `deadline` passes."""
    remaining = None if deadline is None else deadline - time.monotonic()
    if remaining is not None and remaining <= 0:
        raise TimeoutError
    return await asyncio.wait_for(anext(items), remaining)
