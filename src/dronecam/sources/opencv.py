"""`opencv:INDEX_OR_URL`: anything OpenCV's VideoCapture opens (optional extra `dronecam[opencv]`)."""

from __future__ import annotations

import asyncio
from typing import Any

from ..core.source import Pacer, SourceError
from .jpeg import encode_bgr, fit_size


class OpenCVCapture:
    """A camera index, a stream URL (RTSP, HTTP MJPEG) or a file, read through OpenCV.

    Each frame is decoded by OpenCV and encoded once to JPEG at the configured size. Files
    are paced at their own rate (or `fps`); cameras and streams pace themselves.
    """

    def __init__(self, argument: str, settings) -> None:
        if not argument:
            raise SourceError("opencv: needs a camera index or a URL, e.g. opencv:0")
        self.target: int | str = int(argument) if argument.isdigit() else argument
        self.name = "opencv:%s" % argument
        self.settings = settings
        self.width = settings.width
        self.height = settings.height
        self.fps: float | None = settings.fps
        self.is_file = False
        self.ended = False
        self._capture: Any = None
        self._pacer: Pacer | None = None

    async def open(self) -> None:
        if self.ended:
            raise SourceError("%s has ended; serve with --loop to play it again" % self.name)
        try:
            import cv2
        except ImportError:
            raise SourceError("opencv: needs OpenCV: pip install 'dronecam[opencv]'") from None
        self._capture = await asyncio.to_thread(self._open_capture, cv2)

    def _open_capture(self, cv2) -> Any:
        # OpenCV warns on stderr for each backend it tries; the SourceError below says it all.
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        capture = cv2.VideoCapture(self.target)
        if not capture.isOpened():
            capture.release()
            what = "camera %d" % self.target if isinstance(self.target, int) else self.target
            raise SourceError(
                "OpenCV cannot open %s: check that it exists and that no other program uses it"
                % what
            )
        settings = self.settings
        self.is_file = capture.get(cv2.CAP_PROP_FRAME_COUNT) > 0
        if not self.is_file:  # ask the camera; it picks the nearest it can do
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, settings.width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, settings.height)
            if settings.fps:
                capture.set(cv2.CAP_PROP_FPS, settings.fps)
        own_fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = settings.fps or (own_fps if 0 < own_fps <= 240 else None)
        if self.is_file or settings.fps:
            self._pacer = Pacer(self.fps or 30)
        self.width, self.height = fit_size(
            int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)) or settings.width,
            int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) or settings.height,
            settings.width,
            settings.height,
        )
        return capture

    def _grab(self) -> bytes | None:
        import cv2

        capture = self._capture
        ok, image = capture.read()
        if not ok and self.is_file and self.settings.loop:
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = capture.read()
        if not ok:
            return None
        if image.shape[1] != self.width or image.shape[0] != self.height:
            image = cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_AREA)
        return encode_bgr(image, self.settings.quality)

    async def read(self) -> bytes:
        assert self._capture is not None, "open() the source first"
        if self._pacer is not None:
            await self._pacer.wait()
        jpeg = await asyncio.to_thread(self._grab)
        if jpeg is None:
            if self.is_file:
                self.ended = True
                raise SourceError("%s has ended; serve with --loop to repeat it" % self.name)
            raise SourceError("%s sent no frame: is it still connected?" % self.name)
        return jpeg

    async def close(self) -> None:
        capture, self._capture = self._capture, None
        if capture is not None:
            await asyncio.to_thread(capture.release)
