"""The synthetic camera's prerendered loop: the benchmark's almost-free source."""

import pytest

from dronecam.core.protocol import check_jpeg
from dronecam.core.source import SourceError
from dronecam.sources import SourceSettings, make_source


async def test_prerendered_frames_loop_in_order():
    camera = make_source("synthetic:?prerender=3", SourceSettings(320, 240, fps=200))
    await camera.open()
    try:
        frames = [await camera.read() for _ in range(7)]
    finally:
        await camera.close()
    assert all(check_jpeg(frame) is None for frame in frames)
    assert len(set(frames)) == 3
    assert frames[3:6] == frames[0:3] and frames[6] == frames[0]
    assert camera.encode_us_per_frame > 0


@pytest.mark.parametrize("uri", ["synthetic:?prerender=lots", "synthetic:?speed=2"])
def test_bad_synthetic_options_are_refused(uri):
    with pytest.raises(SourceError):
        make_source(uri)
