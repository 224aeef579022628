"""The Pi camera source against a stand-in for Picamera2 (no Pi here): configuration, the
encoder thread's hand-off, quality, errors. The stand-in's encoder thread reuses one buffer for
every frame, as the Pi's V4L2 encoder does, so a source that kept the buffer would fail."""

import asyncio
import enum
import threading
from types import SimpleNamespace

import pytest

from dronecam.core.source import SourceError
from dronecam.sources import SourceSettings
from dronecam.sources.picam import PiCamera
from support import seconds


class Quality(enum.Enum):
    VERY_LOW = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    VERY_HIGH = 4


class MJPEGEncoder:
    def __init__(self, bitrate=None):
        self.bitrate = bitrate


class FileOutput:
    """picamera2.outputs.FileOutput: each encoded frame is written to the file object."""

    def __init__(self, file=None):
        self.fileoutput = file

    def outputframe(self, frame, keyframe=True, timestamp=None, packet=None, audio=False):
        self.fileoutput.write(frame)
        self.fileoutput.flush()


class StandInPicamera2:
    instances: list["StandInPicamera2"] = []

    def __init__(self, camera_num=0, jpegs=(), error=None):
        if error is not None:
            raise error
        self.camera_num = camera_num
        self.jpegs = list(jpegs)
        self.configured = None
        self.recording = None
        self.closed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        StandInPicamera2.instances.append(self)

    def create_video_configuration(self, main=None, controls=None):
        return {"main": {"format": "XBGR8888", **(main or {})}, "controls": controls or {}}

    def configure(self, config):
        self.configured = config

    def start_recording(self, encoder, output, pts=None, config=None, quality=None, name=None):
        assert self.configured is not None, "configure() before start_recording()"
        self.recording = (encoder, output, quality)
        self._thread = threading.Thread(target=self._encode, args=(output,), daemon=True)
        self._thread.start()

    def _encode(self, output):
        buffer = bytearray(max(map(len, self.jpegs)))
        for jpeg in self.jpegs:
            if self._stop.wait(0.01):
                return
            buffer[: len(jpeg)] = jpeg
            output.outputframe(memoryview(buffer)[: len(jpeg)])
            buffer[:] = bytes(len(buffer))  # the encoder reuses its buffer at once

    def stop_recording(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def close(self):
        self.closed = True


def _modules(**camera_options):
    picamera2 = SimpleNamespace(
        Picamera2=lambda camera_num=0: StandInPicamera2(camera_num, **camera_options)
    )
    encoders = SimpleNamespace(MJPEGEncoder=MJPEGEncoder, Quality=Quality)
    outputs = SimpleNamespace(FileOutput=FileOutput)
    return picamera2, encoders, outputs


async def test_encoded_frames_arrive_whole_and_in_order(jpegs):
    settings = SourceSettings(width=1280, height=720, fps=25)
    camera = PiCamera("1", settings, modules=_modules(jpegs=jpegs[:4]))
    await camera.open()
    frames = [await asyncio.wait_for(camera.read(), seconds(5)) for _ in range(4)]
    assert frames == jpegs[:4]
    pi = StandInPicamera2.instances[-1]
    assert pi.camera_num == 1
    assert pi.configured["main"]["size"] == (1280, 720)
    assert pi.configured["controls"] == {"FrameRate": 25.0}
    assert pi.recording[2] is Quality.HIGH  # OV2640 quality 12 is 81 %
    await camera.close()
    assert pi.closed and pi._stop.is_set()


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (IndexError("list index out of range"), "no Raspberry Pi camera found"),
        (RuntimeError("Failed to acquire camera: Device or resource busy"), "busy"),
        (RuntimeError("Camera __init__ sequence did not complete."), "cannot start"),
    ],
)
async def test_errors_say_what_failed(error, message):
    with pytest.raises(SourceError, match=message):
        await PiCamera("", SourceSettings(), modules=_modules(error=error)).open()


async def test_without_picamera2_the_error_says_how_to_install():
    with pytest.raises(SourceError, match="apt install python3-picamera2"):
        await PiCamera("", SourceSettings()).open()
