"""`make_source`: every URI kind maps to its module, and the docs use only kinds that exist."""

import re
from pathlib import Path

import pytest

from dronecam.core.source import SourceError
from dronecam.sources import SourceSettings, make_source

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("synthetic:", "SyntheticCamera"),
        ("v4l2:/dev/video0", "V4L2Camera"),
        ("opencv:0", "OpenCVCapture"),
        ("file:flight.mp4", "FileSource"),
        ("picamera2:", "PiCamera"),
        ("ws://192.168.4.1/ws", "RelaySource"),
        ("wss://relay.example/ws", "RelaySource"),
    ],
)
def test_each_uri_kind_has_its_source(uri, kind):
    source = make_source(uri)
    assert type(source).__name__ == kind
    assert source.name


def test_settings_reach_the_source():
    source = make_source("synthetic:", SourceSettings(320, 240, fps=12, quality=20))
    assert (source.width, source.height, source.fps) == (320, 240, 12)
    assert make_source("synthetic:").fps == 30  # no fps: the source's own


def test_fps_out_of_range_is_refused():
    with pytest.raises(ValueError, match="fps"):
        SourceSettings(fps=0)


@pytest.mark.parametrize("uri", ["camera0", "rtsp://cam/stream", "file:", "opencv:"])
def test_bad_uris_say_what_to_write(uri):
    with pytest.raises(SourceError, match=r"synthetic:|needs a"):
        make_source(uri)


def test_every_source_in_the_docs_is_a_known_kind():
    text = (DOCS / "sources.md").read_text() + (DOCS / "recording.md").read_text()
    uris = set(re.findall(r"--source ([a-z0-9]+:\S*)", text))
    assert len(uris) >= 8
    for uri in uris:
        make_source(uri)  # raises SourceError for an unknown kind
