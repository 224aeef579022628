"""Finding JPEGs in a byte stream, and encoding raw camera frames."""

import numpy as np
import pytest
import simplejpeg

from dronecam.sources.jpeg import encode_yuyv, find_jpeg, fit_size, is_whole_jpeg, jpeg_size

# An APP1 segment holding a thumbnail: its SOI and EOI must not split the frame.
_THUMBNAIL = b"\xff\xd8thumb\xff\xd9"
_APP1 = b"\xff\xe1" + (2 + len(_THUMBNAIL)).to_bytes(2, "big") + _THUMBNAIL


def _with_app1(jpeg: bytes) -> bytes:
    return jpeg[:2] + _APP1 + jpeg[2:]


def _all_jpegs(data: bytes) -> list[bytes]:
    found, offset = [], 0
    while (span := find_jpeg(data, offset)) is not None:
        found.append(data[span[0] : span[1]])
        offset = span[1]
    return found


def test_splits_concatenated_jpegs_skipping_bytes_between(jpegs):
    frames = [jpegs[0], _with_app1(jpegs[1]), jpegs[2]]
    data = b"junk" + frames[0] + b"\r\n--boundary\r\n" + frames[1] + frames[2]
    assert _all_jpegs(data) == frames


def test_truncated_last_jpeg_is_not_returned(jpegs):
    data = jpegs[0] + jpegs[1][: len(jpegs[1]) // 2]
    assert _all_jpegs(data) == [jpegs[0]]


def test_corrupt_start_resyncs_on_the_next_jpeg(jpegs):
    data = b"\xff\xd8\x00garbage" + jpegs[3]
    assert _all_jpegs(data) == [jpegs[3]]


def test_whole_jpeg_and_size(jpegs):
    assert is_whole_jpeg(jpegs[0])
    assert not is_whole_jpeg(jpegs[0][:-10])
    assert not is_whole_jpeg(jpegs[0] + b"tail")
    assert jpeg_size(jpegs[0]) == (640, 480)


@pytest.mark.parametrize(
    ("size", "limit", "expected"),
    [
        ((1920, 1080), (640, 480), (640, 360)),
        ((320, 240), (640, 480), (320, 240)),
        ((641, 481), (640, 480), (638, 480)),
    ],
)
def test_fit_size_keeps_aspect_never_upscales_and_stays_even(size, limit, expected):
    assert fit_size(*size, *limit) == expected


def test_yuyv_frame_encodes_to_the_same_picture():
    width, height = 64, 32
    packed = np.empty((height, width * 2), np.uint8)
    packed[:, 0::2] = np.linspace(16, 235, width, dtype=np.uint8)  # a luma ramp
    packed[:, 1::2] = 128  # no colour
    jpeg = encode_yuyv(packed.tobytes(), width, height, quality=0)
    decoded = simplejpeg.decode_jpeg(jpeg, colorspace="GRAY")[..., 0]
    assert decoded.shape == (height, width)
    assert np.abs(decoded.astype(int) - packed[:, 0::2].astype(int)).max() <= 4
