"""`file:PATH`: a video file (PyAV), a `.mjpeg` file of concatenated JPEGs, or a folder of JPEGs."""

from __future__ import annotations

import asyncio
import mmap
import os
from pathlib import Path
from typing import Any

from ..core.compat import ticks_diff, ticks_ms
from ..core.protocol import DEFAULT_FPS
from ..core.source import Pacer, SourceError
from .jpeg import find_jpeg, jpeg_size

MJPEG_SUFFIXES = (".mjpeg", ".mjpg")
JPEG_SUFFIXES = (".jpg", ".jpeg")
# Further behind its timestamps than this, a file restarts its clock instead of rushing.
_MAX_LATE_MS = 500


class MjpegReader:
    """JPEGs one after another in one file (what `curl` saves from an MJPEG stream, or ffmpeg's
    `-f mjpeg`), read through a memory map so a long file costs no memory."""

    def __init__(self, path: Path) -> None:
        with open(path, "rb") as file:
            if os.fstat(file.fileno()).st_size == 0:
                raise SourceError("%s is empty: it holds no JPEG" % path)
            self._data = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        self.path = path
        self._offset = 0
        if find_jpeg(self._data) is None:
            self.close()
            raise SourceError("%s holds no whole JPEG: is it an MJPEG file?" % path)

    def read(self) -> tuple[bytes, float | None] | None:
        found = find_jpeg(self._data, self._offset)
        if found is None:
            return None
        begin, end = found
        self._offset = end
        return self._data[begin:end], None

    def rewind(self) -> None:
        self._offset = 0

    def close(self) -> None:
        self._data.close()


class FolderReader:
    """Every `.jpg`/`.jpeg` in a folder, in name order."""

    def __init__(self, path: Path) -> None:
        self.files = sorted(
            child for child in path.iterdir() if child.suffix.lower() in JPEG_SUFFIXES
        )
        if not self.files:
            raise SourceError("%s has no .jpg or .jpeg files" % path)
        self._index = 0

    def read(self) -> tuple[bytes, float | None] | None:
        if self._index >= len(self.files):
            return None
        path = self.files[self._index]
        self._index += 1
        return path.read_bytes(), None

    def rewind(self) -> None:
        self._index = 0

    def close(self) -> None:
        pass


def open_reader(path: Path, settings):
    """The reader for what `path` is: a folder, an MJPEG file, or a video file."""
    if not path.exists():
        raise SourceError("%s does not exist: check the path after file:" % path)
    if path.is_dir():
        return FolderReader(path)
    if path.suffix.lower() in MJPEG_SUFFIXES:
        return MjpegReader(path)
    from .video import VideoReader

    return VideoReader(path, settings.width, settings.height, settings.quality)


class TimestampPacer:
    """Waits until each frame's own timestamp comes due, so a file plays at its recorded rate."""

    def __init__(self) -> None:
        self._base: tuple[int, float] | None = None  # (ticks_ms, media seconds) of one frame

    async def wait(self, media_s: float) -> None:
        if self._base is None:
            self._base = (ticks_ms(), media_s)
            return
        due_ms = (media_s - self._base[1]) * 1000
        late_ms = ticks_diff(ticks_ms(), self._base[0]) - due_ms
        if late_ms > _MAX_LATE_MS or due_ms < 0:
            self._base = (ticks_ms(), media_s)
        elif late_ms < 0:
            await asyncio.sleep(-late_ms / 1000)


class FileSource:
    """Plays a file or folder as a camera, at its own rate or `fps`, once or in a loop.

    Blocking reads and decoding run in a worker thread. Without `loop`, the end of the file
    is reported as a camera failure that says so, and the file is not played again.
    """

    def __init__(self, argument: str, settings) -> None:
        if not argument:
            raise SourceError("file: needs a path, e.g. file:flight.mp4 or file:frames/")
        self.path = Path(argument).expanduser()
        self.name = "file:%s" % self.path.name
        self.settings = settings
        self.width: int | None = None
        self.height: int | None = None
        self.fps: float | None = settings.fps
        self.frames = 0
        self.ended = False
        self._reader: Any = None
        self._pacer: Pacer | None = None
        self._timestamps = TimestampPacer()

    async def open(self) -> None:
        if self.ended:
            raise SourceError("%s has ended; serve with --loop to play it again" % self.path.name)
        self._reader = await asyncio.to_thread(open_reader, self.path, self.settings)
        reader_fps = getattr(self._reader, "fps", None)
        # A variable-rate recording reports its timestamp tick as its rate: not worth showing.
        if reader_fps and reader_fps > 240:
            reader_fps = None
        self.fps = self.settings.fps or reader_fps or DEFAULT_FPS
        self._pacer = None
        self._timestamps = TimestampPacer()

    async def read(self) -> bytes:
        reader = self._reader
        assert reader is not None, "open() the source first"
        item = await asyncio.to_thread(reader.read)
        if item is None:
            if not self.settings.loop:
                self.ended = True
                raise SourceError(
                    "%s has ended after %d frames; serve with --loop to repeat it"
                    % (self.path.name, self.frames)
                )
            await asyncio.to_thread(reader.rewind)
            self._timestamps = TimestampPacer()
            item = await asyncio.to_thread(reader.read)
            if item is None:
                raise SourceError("%s holds no frame it can play" % self.path.name)
        jpeg, media_s = item
        if media_s is None or self.settings.fps:
            if self._pacer is None:
                self._pacer = Pacer(self.fps or DEFAULT_FPS)
            await self._pacer.wait()
        else:
            await self._timestamps.wait(media_s)
        if self.width is None:
            self.width, self.height = jpeg_size(jpeg)
        self.frames += 1
        return jpeg

    async def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            await asyncio.to_thread(reader.close)
