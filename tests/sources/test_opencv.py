"""`opencv:` on a real video file through OpenCV's VideoCapture."""

import asyncio

import pytest
import simplejpeg
from media_files import write_h264

from dronecam.core.source import SourceError
from dronecam.sources import SourceSettings, make_source
from support import seconds


async def test_video_file_through_opencv_is_encoded_once_per_frame(tmp_path):
    path = write_h264(tmp_path / "flight.mp4", frames=10, width=320, height=240)
    source = make_source("opencv:%s" % path, SourceSettings(fps=240, quality=0))
    await source.open()
    assert source.is_file and (source.width, source.height) == (320, 240)
    frames = []
    with pytest.raises(SourceError, match="ended"):
        for _ in range(20):
            frames.append(await asyncio.wait_for(source.read(), seconds(5)))
    await source.close()
    assert len(frames) == 10
    levels = [simplejpeg.decode_jpeg(f, colorspace="GRAY").mean() for f in frames]
    assert all(abs(level - 10 * i) <= 3 for i, level in enumerate(levels)), levels
    with pytest.raises(SourceError, match="--loop"):
        await source.open()


async def test_opencv_loops_a_file(tmp_path):
    path = write_h264(tmp_path / "short.mp4", frames=3, width=320, height=240)
    source = make_source("opencv:%s" % path, SourceSettings(fps=240, loop=True, quality=0))
    await source.open()
    frames = [await asyncio.wait_for(source.read(), seconds(5)) for _ in range(5)]
    await source.close()
    levels = [round(simplejpeg.decode_jpeg(f, colorspace="GRAY").mean() / 10) for f in frames]
    assert levels == [0, 1, 2, 0, 1]


async def test_what_opencv_cannot_open_is_named(tmp_path):
    with pytest.raises(SourceError, match=r"OpenCV cannot open .*missing\.mp4"):
        await make_source("opencv:%s" % (tmp_path / "missing.mp4")).open()
