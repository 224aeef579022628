"""`picamera2:`: Raspberry Pi cameras through Picamera2 and the Pi's JPEG encoder (optional).

Picamera2 comes with Raspberry Pi OS (`sudo apt install python3-picamera2`); it is not on PyPI
in a form that installs elsewhere. Its MJPEGEncoder is the hardware encoder on a Pi 4 and
earlier, and libav's software MJPEG on a Pi 5, which has no JPEG hardware.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

from ..core.protocol import quality_percent
from ..core.source import SourceError
from .slot import FrameSlot


class _SlotOutput(io.BufferedIOBase):
    """What Picamera2's FileOutput writes each encoded JPEG to, on the encoder's thread."""

    def __init__(self, slot: FrameSlot) -> None:
        super().__init__()
        self.slot = slot

    def writable(self) -> bool:
        return True

    def write(self, buffer) -> int:  # type: ignore[override]
        self.slot.put_threadsafe(bytes(buffer))  # the encoder reuses its buffer: copy now
        return len(buffer)


def quality_level(ov2640_quality: int, levels):
    """The Picamera2 `Quality` level nearest a quality on the OV2640 scale."""
    percent = quality_percent(ov2640_quality)
    for floor, name in ((90, "VERY_HIGH"), (75, "HIGH"), (60, "MEDIUM"), (40, "LOW")):
        if percent >= floor:
            return getattr(levels, name)
    return levels.VERY_LOW


class PiCamera:
    """The Pi's camera at the configured size and rate, JPEG-encoded by the Pi itself."""

    def __init__(self, argument: str, settings, modules=None) -> None:
        self.index = int(argument) if argument.isdigit() else 0
        self.name = "picamera2:%d" % self.index
        self.settings = settings
        self.width: int | None = settings.width
        self.height: int | None = settings.height
        self.fps: float | None = settings.fps or 30
        self._modules = modules
        self._camera: Any = None
        self._slot: FrameSlot | None = None

    async def open(self) -> None:
        slot = self._slot = FrameSlot()
        self._camera = await asyncio.to_thread(self._start, self._modules or _modules(), slot)

    def _start(self, modules, slot: FrameSlot) -> Any:
        picamera2, encoders, outputs = modules
        try:
            camera = picamera2.Picamera2(self.index)
        except IndexError:
            raise SourceError(
                "no Raspberry Pi camera found: check the ribbon cable and `rpicam-hello --list-cameras`"
            ) from None
        except RuntimeError as error:
            if "busy" in str(error).lower():
                raise SourceError(
                    "the Pi camera is busy: another program (rpicam-*, motion) is using it"
                ) from None
            raise SourceError("cannot start the Pi camera: %s" % error) from None
        try:
            settings = self.settings
            config = camera.create_video_configuration(
                main={"size": (settings.width, settings.height)},
                controls={"FrameRate": float(self.fps or 30)},
            )
            camera.configure(config)
            self.width, self.height = config["main"]["size"]
            camera.start_recording(
                encoders.MJPEGEncoder(),
                outputs.FileOutput(_SlotOutput(slot)),
                quality=quality_level(settings.quality, encoders.Quality),
            )
        except BaseException:
            camera.close()
            raise
        return camera

    async def read(self) -> bytes:
        assert self._slot is not None, "open() the camera first"
        jpeg = await self._slot.take()
        assert isinstance(jpeg, bytes)
        return jpeg

    async def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            await asyncio.to_thread(_stop, camera)


def _stop(camera) -> None:
    try:
        camera.stop_recording()
    finally:
        camera.close()


def _modules():
    try:
        import picamera2
        from picamera2 import encoders, outputs
    except ImportError:
        raise SourceError(
            "picamera2: needs Picamera2, part of Raspberry Pi OS: sudo apt install python3-picamera2"
        ) from None
    return picamera2, encoders, outputs
