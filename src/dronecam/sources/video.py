"""Video files through PyAV: MJPEG packets passed through as they are, anything else decoded
once and encoded to JPEG at the configured size."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

from ..core.source import SourceError
from .jpeg import encode_yuv420, fit_size, is_whole_jpeg

_DHT = b"\xff\xc4"


class VideoReader:
    """The first video stream of a file, one JPEG and its time in seconds per `read()`.

    Blocking: the file source calls it from a worker thread.
    """

    def __init__(self, path: Path, max_width: int, max_height: int, quality: int) -> None:
        self.path = path
        self.max_size = (max_width, max_height)
        self.quality = quality
        self._open()

    def _open(self) -> None:
        try:
            import av
        except ImportError:
            raise SourceError(
                "file: reading video files needs PyAV: pip install 'dronecam[av]'"
            ) from None

        try:
            self._container = av.open(str(self.path))
        except av.error.FFmpegError as error:
            raise SourceError(
                "%s is not a video file ffmpeg can read (%s)" % (self.path, error.strerror or error)
            ) from None
        if not self._container.streams.video:
            self._container.close()
            raise SourceError("%s has no video stream" % self.path)
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        codec = self._stream.codec_context
        self.codec = codec.name
        self.fps = float(self._stream.average_rate or self._stream.guessed_rate or 0) or None
        self.width, self.height = fit_size(codec.width, codec.height, *self.max_size)
        size_kept = (codec.width, codec.height) == (self.width, self.height)
        self.passthrough = self.codec == "mjpeg" and size_kept
        self._frames = self._generate()

    def _generate(self) -> Generator[tuple[bytes, float | None], None, None]:
        for packet in self._container.demux(self._stream):
            if self.passthrough and packet.size:
                data = bytes(packet)
                # Some AVI cameras leave out the Huffman tables: those frames are re-encoded.
                if _DHT in data[:2048] and is_whole_jpeg(data):
                    pts = packet.pts
                    yield data, (float(pts * packet.time_base) if pts is not None else None)
                    continue
            for frame in packet.decode():  # the empty packet at the end flushes the decoder
                planar = frame.to_ndarray(width=self.width, height=self.height, format="yuvj420p")
                yield encode_yuv420(planar, self.width, self.height, self.quality), frame.time

    def read(self) -> tuple[bytes, float | None] | None:
        try:
            return next(self._frames)
        except StopIteration:
            return None

    def rewind(self) -> None:
        self.close()
        self._open()

    def close(self) -> None:
        self._frames.close()
        self._container.close()
