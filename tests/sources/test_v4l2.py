"""The V4L2 camera against a stand-in for linuxpy's Device: format negotiation, MJPEG passed
through, YUYV encoded once, errors. A pipe stands in for the device's file descriptor, so the
event-loop reader path is the real one; no /dev/video device exists on the test machine."""

import asyncio
import errno
import os
from types import SimpleNamespace

import numpy as np
import pytest
import simplejpeg
from linuxpy.video import raw
from linuxpy.video.device import BufferType, Format, Frame, ImageFormat, PixelFormat

from dronecam.client import StreamClient
from dronecam.core.protocol import strip_tags
from dronecam.core.source import SourceError
from dronecam.sources import SourceSettings
from dronecam.sources.v4l2 import V4L2Camera, choose_format
from support import host_server, seconds


class StandInDevice:
    """What V4L2Camera uses of linuxpy's Device, behaving as a UVC driver does: S_FMT picks
    the nearest size it supports, and keeps its format when asked for one it lacks."""

    def __init__(self, formats, sizes=((640, 480), (1280, 720)), fail=None, refuse=False):
        self.formats = formats
        self.sizes = sorted(sizes)
        self.fail = fail or {}
        self.refuse = refuse
        self.format = Format(*self.sizes[0], formats[0] if formats else 0, 0, 0)
        self.fps_requested = None
        self.info = SimpleNamespace(
            formats=[ImageFormat(BufferType.VIDEO_CAPTURE, f.name, 0, f) for f in formats]
        )
        self.queue: list[bytes] = []
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        self.closed = True
        self.unplugged = False

    def open(self):
        if "open" in self.fail:
            raise OSError(self.fail["open"], os.strerror(self.fail["open"]))
        self.closed = False

    def close(self):
        self.closed = True
        if self._write_fd >= 0:
            os.close(self._read_fd)
            os.close(self._write_fd)
            self._write_fd = -1

    def fileno(self):
        return self._read_fd

    def set_format(self, buffer_type, width, height, pixel_format="MJPG"):
        assert buffer_type == BufferType.VIDEO_CAPTURE
        wanted = PixelFormat(raw.v4l2_fourcc(*pixel_format))
        fitting = [s for s in self.sizes if s[0] <= width and s[1] <= height] or self.sizes[:1]
        fourcc = wanted if wanted in self.formats and not self.refuse else self.format[2]
        self.format = Format(*fitting[-1], fourcc, 0, 0)

    def get_format(self, buffer_type):
        return self.format

    def set_fps(self, buffer_type, fps):
        self.fps_requested = fps

    def get_fps(self, buffer_type):
        return self.fps_requested or 30

    def deliver(self, data: bytes):
        """The camera fills a buffer: the descriptor becomes readable."""
        self.queue.append(data)
        os.write(self._write_fd, b"!")


class StandInCapture:
    """linuxpy's VideoCapture: open() requests buffers and starts streaming; raw_read dequeues."""

    def __init__(self, device: StandInDevice, size: int = 2):
        self.device = device
        self.buffer = self
        self.streaming = False

    def open(self):
        if "stream" in self.device.fail:
            raise OSError(self.device.fail["stream"], os.strerror(self.device.fail["stream"]))
        self.streaming = True

    def close(self):
        self.streaming = False

    def raw_read(self):
        if self.device.unplugged:
            raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))
        os.read(self.device.fileno(), 1)
        buffer = raw.v4l2_buffer()
        buffer.bytesused = len(self.device.queue[0])
        return Frame(self.device.queue.pop(0), buffer, self.device.format)


def _camera(device, **settings):
    backend = SimpleNamespace(
        Device=lambda path: device, VideoCapture=StandInCapture, BufferType=BufferType
    )
    return V4L2Camera("/dev/video7", SourceSettings(**settings), backend=backend)


def _yuyv(width, height, luma):
    packed = np.full((height, width * 2), 128, np.uint8)
    packed[:, 0::2] = luma
    return packed.tobytes()


def test_choose_format_prefers_mjpeg_then_yuyv():
    assert choose_format(["YUYV", "MJPG"]) == "MJPG"
    assert choose_format(["GREY", "YUYV"]) == "YUYV"
    with pytest.raises(SourceError, match="offers GREY, H264; dronecam needs MJPG or YUYV"):
        choose_format(["GREY", "H264"])


async def test_mjpeg_is_passed_through_byte_for_byte(jpegs):
    device = StandInDevice([PixelFormat.YUYV, PixelFormat.MJPEG])
    camera = _camera(device, width=800, height=600, fps=15)
    await camera.open()
    assert camera.pixel_format == "MJPG"
    assert (camera.width, camera.height, camera.fps) == (640, 480, 15)
    for jpeg in jpegs[:3]:
        device.deliver(jpeg)
        assert await asyncio.wait_for(camera.read(), seconds(5)) == jpeg
    await camera.close()
    assert device.closed


async def test_yuyv_only_camera_is_encoded_once_per_frame():
    device = StandInDevice([PixelFormat.YUYV], sizes=[(320, 240)])
    camera = _camera(device, quality=0)
    await camera.open()
    assert camera.pixel_format == "YUYV"
    device.deliver(_yuyv(320, 240, 200))
    jpeg = await asyncio.wait_for(camera.read(), seconds(5))
    picture = simplejpeg.decode_jpeg(jpeg, colorspace="GRAY")
    assert picture.shape[:2] == (240, 320) and abs(picture.mean() - 200) < 2
    await camera.close()


async def test_only_the_newest_frame_is_kept(jpegs):
    device = StandInDevice([PixelFormat.MJPEG])
    camera = _camera(device)
    await camera.open()
    for jpeg in jpegs[:3]:
        device.deliver(jpeg)
    for _ in range(10):  # let the event loop run the reader for each buffer
        await asyncio.sleep(0)
    assert await asyncio.wait_for(camera.read(), seconds(5)) == jpegs[2]
    assert camera._slot is not None and camera._slot.overwritten == 2
    await camera.close()


async def test_an_unplugged_camera_is_a_source_error(jpegs):
    device = StandInDevice([PixelFormat.MJPEG])
    camera = _camera(device)
    await camera.open()
    device.unplugged = True
    device.deliver(jpegs[0])
    with pytest.raises(SourceError, match="/dev/video7 stopped"):
        await asyncio.wait_for(camera.read(), seconds(5))
    await camera.close()


@pytest.mark.parametrize(
    ("device", "message"),
    [
        (StandInDevice([PixelFormat.GREY, PixelFormat.H264]), "offers GREY, H264"),
        (StandInDevice([]), "not a video capture device"),
        (StandInDevice([PixelFormat.YUYV, PixelFormat.MJPEG], refuse=True), "not switch to MJPG"),
        (StandInDevice([PixelFormat.MJPEG], fail={"open": errno.ENOENT}), "no camera at"),
        (StandInDevice([PixelFormat.MJPEG], fail={"open": errno.EACCES}), "video group"),
        (StandInDevice([PixelFormat.MJPEG], fail={"stream": errno.EBUSY}), "is busy"),
    ],
)
async def test_errors_say_what_failed_and_what_to_do(device, message):
    with pytest.raises(SourceError, match=message):
        await _camera(device).open()
    assert device.closed
    device.close()  # the pipe behind a device that never opened


async def test_passthrough_frames_reach_clients_unchanged(jpegs):
    device = StandInDevice([PixelFormat.MJPEG])
    camera = _camera(device)

    async def film():
        while True:
            for jpeg in jpegs:
                if not device.closed:
                    device.deliver(jpeg)
                await asyncio.sleep(0.02)

    filming = asyncio.create_task(film())
    try:
        async with host_server(camera) as server, StreamClient(server.url) as client:
            frames = client.frames()
            for _ in range(5):
                frame = await asyncio.wait_for(anext(frames), seconds(5))
                assert strip_tags(frame.jpeg) in jpegs
            assert client.welcome["source"] == "v4l2:/dev/video7"
            assert client.welcome["width"] == 640
    finally:
        filming.cancel()
