"""H.264 for ground stations (`serve --h264 URL`): encoded once with PyAV, sent to every sink.

The encoder runs in its own thread and takes the newest frame whenever it is ready, like a
slow client: while it encodes, new frames are skipped (counted), and the hub never waits.
Each access unit carries the frame's tag in an SEI message (h264_sei.py). The thread only
decodes, encodes and packetizes into memory; the event loop sends (h264_sinks.py): RTP
(`rtp://HOST:PORT`, what QGroundControl's "UDP h.264 video stream" plays), MPEG-TS over UDP
(`udp://HOST:PORT`) and an RTSP push to a media server (`rtsp://HOST:PORT/PATH`). A sink that
fails is reported in stats and retried, never taking the server or the others down.
See docs/h264.md.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from fractions import Fraction
from typing import TYPE_CHECKING

from ..core.hub import RateMeter, Subscription
from . import h264_sei
from .h264_sinks import TIME_BASE, Packetizer, Sink, check_sink_url, make_sink, sdp_text

if TYPE_CHECKING:
    import av

    from ..core.hub import Frame, Hub

__all__ = ["H264Output", "H264Settings", "sdp_text"]

log = logging.getLogger("dronecam.h264")

# One encoded access unit: is it a keyframe, and each sink's datagrams for it.
Unit = tuple[bool, list[list[bytes]]]


class H264Settings:
    """What `--h264` configures: where to send, which encoder, how many bits."""

    def __init__(
        self,
        urls: list[str],
        encoder: str = "libx264",
        bitrate_kbps: int = 2000,
        keyframe_interval: int = 30,
        size: tuple[int, int] | None = None,
        preset: str = "veryfast",
    ) -> None:
        """Raises ValueError with a one-line reason for a bad URL, size or figure."""
        if not urls:
            raise ValueError("--h264 needs at least one URL")
        for url in urls:
            check_sink_url(url)
        if not 50 <= bitrate_kbps <= 100000:
            raise ValueError("the H.264 bitrate must be from 50 to 100000 kbit/s")
        if not 1 <= keyframe_interval <= 600:
            raise ValueError("the keyframe interval must be from 1 to 600 frames")
        if size is not None and (size[0] % 2 or size[1] % 2 or min(size) < 16):
            raise ValueError("the H.264 size must be even and at least 16x16, not %dx%d" % size)
        self.urls = list(urls)
        self.encoder = encoder
        self.bitrate_kbps = bitrate_kbps
        self.keyframe_interval = keyframe_interval
        self.size = size
        self.preset = preset


class Encoder:
    """JPEG in, tagged H.264 access units out, packetized for each sink: the thread's side."""

    def __init__(self, settings: H264Settings, sink_kinds: list[str], fps: float) -> None:
        self.settings = settings
        self.fps = fps
        self.sink_kinds = sink_kinds
        self.force_keyframe = True  # set from the event loop when a sink (re)joins
        self._decoder: av.video.codeccontext.VideoCodecContext | None = None
        self._encoder: av.video.codeccontext.VideoCodecContext | None = None
        self._packetizers: list[Packetizer] = []
        self._first_us: int | None = None
        self._last_pts = -1
        self._tags: dict[int, tuple[int, int]] = {}

    def encode(
        self, jpeg: bytes | memoryview, seq: int, capture_us: int
    ) -> tuple[float, list[Unit]]:
        """Encode one frame: the seconds it took, and what each sink is to send."""
        import av

        started = time.perf_counter()
        if self._decoder is None:
            decoder = av.CodecContext.create("mjpeg", "r")
            assert isinstance(decoder, av.video.codeccontext.VideoCodecContext)
            self._decoder = decoder
        pictures = self._decoder.decode(av.Packet(bytes(jpeg)))
        if not pictures:
            return time.perf_counter() - started, []
        picture = pictures[0]
        encoder = self._encoder or self._open_encoder(picture)
        if (picture.width, picture.height, picture.format.name) != (
            encoder.width,
            encoder.height,
            encoder.pix_fmt,
        ):
            picture = picture.reformat(encoder.width, encoder.height, encoder.pix_fmt)
        if self._first_us is None:
            self._first_us = capture_us
        pts = max(self._last_pts + 1, (capture_us - self._first_us) * 9 // 100)
        self._last_pts = pts
        picture.pts = pts
        picture.time_base = TIME_BASE
        # A decoded JPEG is an intra picture: left as it is, every frame would be an IDR.
        picture.pict_type = av.video.frame.PictureType.I if self.force_keyframe else 0
        self.force_keyframe = False
        self._tags[pts] = (seq, capture_us)
        units = [self._packetize(packet) for packet in encoder.encode(picture)]
        if len(self._tags) > 64:  # an encoder that never returns some frames: forget them
            self._tags = dict(list(self._tags.items())[-32:])
        return time.perf_counter() - started, units

    def _open_encoder(self, picture: av.VideoFrame) -> av.video.codeccontext.VideoCodecContext:
        import av

        settings = self.settings
        width, height = settings.size or (picture.width & ~1, picture.height & ~1)
        encoder = av.CodecContext.create(settings.encoder, "w")
        assert isinstance(encoder, av.video.codeccontext.VideoCodecContext)
        encoder.width, encoder.height = width, height
        formats = [f.name for f in encoder.codec.video_formats or ()]
        # libx264 takes the JPEG's full-range 4:2:0 planes as they are: no conversion.
        encoder.pix_fmt = next(
            (name for name in ("yuvj420p", "yuv420p", "nv12") if name in formats), "yuv420p"
        )
        encoder.time_base = TIME_BASE
        encoder.framerate = Fraction(self.fps).limit_denominator(1001)
        encoder.bit_rate = settings.bitrate_kbps * 1000
        encoder.gop_size = settings.keyframe_interval
        encoder.max_b_frames = 0
        options = {
            "maxrate": str(settings.bitrate_kbps * 1000),
            "bufsize": str(settings.bitrate_kbps * 1000 // 2),
        }
        if settings.encoder.startswith("libx264"):
            options.update({"preset": settings.preset, "tune": "zerolatency"})
        encoder.options = options
        encoder.open()
        self._encoder = encoder
        self._packetizers = [Packetizer(kind, width, height, self.fps) for kind in self.sink_kinds]
        log.info(
            "[H264] encoding %dx%d with %s at %d kbit/s, a keyframe every %d frames",
            width,
            height,
            settings.encoder,
            settings.bitrate_kbps,
            settings.keyframe_interval,
        )
        return encoder

    def _packetize(self, packet: av.Packet) -> Unit:
        pts = packet.pts if packet.pts is not None else self._last_pts
        seq, capture_us = self._tags.pop(pts, (0, 0))
        access_unit = h264_sei.insert_tag(bytes(packet), seq, capture_us)
        keyframe = bool(packet.is_keyframe)
        return keyframe, [p.packetize(access_unit, pts, keyframe) for p in self._packetizers]

    def close(self) -> None:
        for packetizer in self._packetizers:
            packetizer.close()
        self._packetizers = []
        self._encoder = None
        self._decoder = None


class H264Output:
    """The server's H.264 output: one encoder thread fed the newest frame when it is free."""

    name = "h264"

    def __init__(self, settings: H264Settings, fps: float = 30) -> None:
        self.settings = settings
        self.sinks: list[Sink] = [make_sink(url) for url in settings.urls]
        self.encoder = Encoder(settings, [sink.kind for sink in self.sinks], fps)
        self.enabled = True
        self.subscription: Subscription | None = None
        self.rate = RateMeter()
        self.encode_ms = 0.0
        self.frames_encoded = 0
        self.frames_skipped = (
            0  # by subscriptions that ended (disabled): the live one counts its own
        )
        self.error = ""
        self._hub: Hub | None = None
        self._busy = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._pending: asyncio.Future | None = None

    async def start(self, hub: Hub) -> None:
        self._hub = hub
        self._loop = asyncio.get_running_loop()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="dronecam-h264"
        )
        for sink in self.sinks:
            await sink.start()
        if self.enabled:
            self.subscription = hub.subscribe(self.on_frame, client=False)

    async def stop(self) -> None:
        self.set_enabled(False)
        if self._pending is not None:
            await asyncio.wait([self._pending], timeout=5)
        for sink in self.sinks:
            await sink.stop()
        if self._executor is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, self.encoder.close)
            self._executor.shutdown(wait=False)
            self._executor = None

    def set_enabled(self, enabled: bool) -> None:
        """Encode (True) or not (False): a disabled output costs nothing, and restarts on a keyframe."""
        self.enabled = enabled
        hub = self._hub
        if hub is None:
            return
        if enabled and self.subscription is None:
            self.encoder.force_keyframe = True
            self.subscription = hub.subscribe(self.on_frame, client=False)
            self.on_frame()
        elif not enabled and self.subscription is not None:
            hub.unsubscribe(self.subscription)
            self.frames_skipped += self.subscription.frames_dropped
            self.subscription = None

    def on_frame(self) -> None:
        """The hub's callback: hand the newest frame to the encoder thread if it is free."""
        if self._busy or self.subscription is None or self._executor is None:
            return
        frame: Frame | None = self.subscription.take()
        if frame is None:
            return
        assert self._loop is not None
        self._busy = True
        self._pending = self._loop.run_in_executor(
            self._executor, self.encoder.encode, frame.jpeg(), frame.seq, frame.capture_us
        )
        self._pending.add_done_callback(self._encoded)

    def _encoded(self, done: asyncio.Future) -> None:
        self._busy = False
        self._pending = None
        if done.cancelled():
            return
        error = done.exception()
        if error is not None:
            message = str(error) or type(error).__name__
            if message != self.error:
                log.warning("[H264] encoding failed: %s", message)
            self.error = message
        else:
            seconds, units = done.result()
            for keyframe, per_sink in units:
                for sink, datagrams in zip(self.sinks, per_sink, strict=True):
                    sink.send(datagrams, keyframe)
            if any(sink.wants_keyframe() for sink in self.sinks):
                self.encoder.force_keyframe = True
            self.frames_encoded += 1
            self.rate.tick()
            # A moving average over about 30 frames: steady, and recent.
            self.encode_ms += (seconds * 1000 - self.encode_ms) / min(self.frames_encoded, 30)
            self.error = ""
        if self.enabled:
            self.on_frame()

    def status(self) -> dict:
        subscription = self.subscription
        skipped = self.frames_skipped + (subscription.frames_dropped if subscription else 0)
        fields: dict[str, float | str] = {
            "h264_fps": round(self.rate.update(), 1),
            "h264_encode_ms": round(self.encode_ms, 2),
            "h264_frames": self.frames_encoded,
            "h264_skipped": skipped,
        }
        errors = [self.error] if self.error else []
        errors += ["%s: %s" % (sink.url, sink.error) for sink in self.sinks if sink.error]
        if errors:
            fields["h264_error"] = "; ".join(errors)
        return fields
