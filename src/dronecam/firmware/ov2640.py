"""The OV2640 through micropython-camera-API's `camera` module, as a dronecam source."""

import asyncio

from camera import Camera, FrameSize, GrabMode, PixelFormat
from micropython import const

from dronecam.core.protocol import quality_percent
from dronecam.core.source import SourceError

POLL_MS = const(2)


class OV2640:
    """JPEG frames from the driver's buffers, newest first (grab mode LATEST).

    `read()` returns the driver's memoryview: valid until the next read, so the feed's frame
    builder copies it into the ring at once.
    """

    name = "ov2640"

    def __init__(self, pins, frame_size="VGA", quality=12, frame_buffers=2, xclk_freq_hz=20000000):
        self.pins = pins
        self.frame_size = frame_size
        # The module takes 0-100 % and maps it to the driver's 63-0 (protocol.quality_percent).
        self.quality_percent = quality_percent(quality)
        self.frame_buffers = frame_buffers
        self.xclk_freq_hz = xclk_freq_hz
        self.camera = None
        self.width = 0
        self.height = 0
        self.fps = 30

    async def open(self):
        try:
            self.camera = Camera(
                pixel_format=PixelFormat.JPEG,
                frame_size=getattr(FrameSize, self.frame_size),
                jpeg_quality=self.quality_percent,
                fb_count=self.frame_buffers,
                grab_mode=GrabMode.LATEST,
                xclk_freq=self.xclk_freq_hz,
                **self.pins
            )
        except (OSError, ValueError, AttributeError) as error:
            raise SourceError(
                "the camera did not start (%s): check BOARD in config.py and the ribbon cable"
                % error
            )
        self.width = self.camera.get_pixel_width()
        self.height = self.camera.get_pixel_height()

    async def read(self):
        camera = self.camera
        camera.free_buffer()  # hand the last buffer back so the driver can fill it
        while not camera.frame_available():
            await asyncio.sleep_ms(POLL_MS)
        frame = camera.capture()
        if frame is None:
            raise OSError("capture failed")
        return frame

    async def close(self):
        camera, self.camera = self.camera, None
        if camera is not None:
            camera.deinit()
