"""`v4l2:/dev/videoN`: UVC webcams and capture sticks through linuxpy (optional extra `dronecam[v4l2]`).

MJPEG is passed through exactly as the camera sends it, the way the ESP32 passes on the
OV2640's hardware JPEG; a camera that only sends YUYV is encoded once per frame.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from typing import Any

from ..core.source import SourceError
from .jpeg import encode_yuyv
from .slot import FrameSlot

MJPEG = "MJPG"
YUYV = "YUYV"
PREFERRED_FORMATS = (MJPEG, YUYV)


def choose_format(offered: list[str]) -> str:
    """MJPEG if the camera offers it, else YUYV.

    Raises:
        SourceError: the camera offers neither.
    """
    for fourcc in PREFERRED_FORMATS:
        if fourcc in offered:
            return fourcc
    raise SourceError(
        "the camera offers %s; dronecam needs MJPG or YUYV (try opencv: for other formats)"
        % (", ".join(offered) or "no capture format")
    )


def fourcc_name(pixel_format: int) -> str:
    return int(pixel_format).to_bytes(4, "little").decode("ascii", "replace").strip()


def _backend():
    try:
        from linuxpy.video import device
    except ImportError:
        raise SourceError("v4l2: needs linuxpy: pip install 'dronecam[v4l2]'") from None
    logging.getLogger("linuxpy").setLevel(logging.WARNING)  # it logs every open at INFO
    return device


class V4L2Camera:
    """A V4L2 capture device, read without blocking the event loop.

    The device's file descriptor is watched by the event loop; when a buffer is ready it is
    dequeued, copied and requeued at once (a few microseconds), and only the newest frame
    is kept. Opening and format negotiation (ioctls that may block) run in a thread.

    Args:
        backend: the `linuxpy.video.device` module (a stand-in in tests).
    """

    def __init__(self, argument: str, settings, backend=None) -> None:
        self.path = argument or "/dev/video0"
        self.name = "v4l2:%s" % self.path
        self.settings = settings
        self.backend = backend
        self.width: int | None = None
        self.height: int | None = None
        self.fps: float | None = settings.fps
        self.pixel_format: str | None = None
        self._device: Any = None
        self._capture: Any = None
        self._slot: FrameSlot | None = None

    async def open(self) -> None:
        backend = self.backend or _backend()
        self._slot = FrameSlot()
        self._device, self._capture = await asyncio.to_thread(self._start, backend)
        asyncio.get_running_loop().add_reader(self._device.fileno(), self._on_readable)

    def _start(self, backend) -> tuple[Any, Any]:
        capture_type = backend.BufferType.VIDEO_CAPTURE
        device = backend.Device(self.path)
        try:
            device.open()
        except OSError as error:
            raise self._explain(error) from None
        try:
            offered = [
                fourcc_name(image_format.pixel_format)
                for image_format in device.info.formats
                if image_format.type == capture_type
            ]
            if not offered:
                raise SourceError(
                    "%s is not a video capture device (UVC cameras also create a metadata "
                    "node: try the next /dev/videoN)" % self.path
                )
            wanted = choose_format(offered)
            settings = self.settings
            device.set_format(capture_type, settings.width, settings.height, wanted)
            actual = device.get_format(capture_type)
            self.pixel_format = fourcc_name(actual.pixel_format)
            if self.pixel_format != wanted:
                raise SourceError(
                    "%s would not switch to %s (it chose %s)"
                    % (self.path, wanted, self.pixel_format)
                )
            self.width, self.height = actual.width, actual.height
            if settings.fps:
                try:
                    device.set_fps(capture_type, settings.fps)
                except OSError:  # many capture sticks have one fixed rate; go on with it
                    pass
            try:
                self.fps = float(device.get_fps(capture_type))
            except (OSError, ZeroDivisionError):  # a driver without G_PARM, or 0/0
                self.fps = settings.fps
            capture = backend.VideoCapture(device, size=2)
            capture.open()
        except OSError as error:
            device.close()
            raise self._explain(error) from None
        except BaseException:
            device.close()
            raise
        return device, capture

    def _explain(self, error: OSError) -> SourceError:
        path = self.path
        if error.errno == errno.ENOENT:
            return SourceError("no camera at %s: is it plugged in? `ls /dev/video*`" % path)
        if error.errno in (errno.EACCES, errno.EPERM):
            return SourceError(
                "no permission to open %s: add yourself to the video group "
                "(sudo usermod -aG video $USER, then log in again)" % path
            )
        if error.errno == errno.EBUSY:
            return SourceError(
                "%s is busy: another program is using the camera; close it and retry" % path
            )
        if error.errno == errno.ENOTTY:
            return SourceError("%s is not a V4L2 video device" % path)
        return SourceError("cannot use %s: %s" % (path, error.strerror or error))

    def _on_readable(self) -> None:
        slot = self._slot
        assert slot is not None and self._capture is not None
        try:
            frame = self._capture.buffer.raw_read()
        except OSError as error:  # unplugged (ENODEV) or a driver error: the feed reopens
            slot.fail(SourceError("%s stopped: %s" % (self.path, error.strerror or error)))
            return
        slot.put(frame.data)

    async def read(self) -> bytes:
        assert self._slot is not None, "open() the camera first"
        data = await self._slot.take()
        assert isinstance(data, bytes | bytearray | memoryview)
        if self.pixel_format == MJPEG:
            return bytes(data)
        assert self.width is not None and self.height is not None
        if len(data) < self.width * self.height * 2:
            raise SourceError("%s sent a short YUYV frame (%d bytes)" % (self.path, len(data)))
        return await asyncio.to_thread(
            encode_yuyv, data, self.width, self.height, self.settings.quality
        )

    async def close(self) -> None:
        device, capture = self._device, self._capture
        self._device = self._capture = None
        if device is None:
            return
        if not device.closed:
            asyncio.get_running_loop().remove_reader(device.fileno())
        await asyncio.to_thread(_stop, device, capture)


def _stop(device, capture) -> None:
    try:
        capture.close()
    finally:
        device.close()
