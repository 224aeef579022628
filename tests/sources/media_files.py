"""Video files the source tests write for themselves with PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def write_h264(path: Path, frames: int = 12, width: int = 320, height: int = 240, fps: int = 50):
    """An H.264 file whose frame `i` is a flat grey of level 10 * i."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            image = np.full((height, width, 3), 10 * index, np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def write_mjpeg_mkv(path: Path, jpegs: list[bytes], times_us: list[int]) -> Path:
    """A Matroska file of the given JPEGs at the given times (variable frame rate)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg")
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuvj420p"
        stream.time_base = Fraction(1, 1_000_000)
        for jpeg, time_us in zip(jpegs, times_us, strict=True):
            packet = av.Packet(jpeg)
            packet.pts = packet.dts = time_us
            packet.time_base = Fraction(1, 1_000_000)
            packet.stream = stream
            container.mux(packet)
    return path
