"""JPEG plumbing the sources share: finding JPEGs in a byte stream, sizes, encoding raw frames."""

from __future__ import annotations

import numpy as np
import simplejpeg

from ..core.protocol import SOI, quality_percent

_SOS = 0xDA
_EOI_MARKER = 0xD9
# Markers that stand alone, without a length: TEM and RST0..7.
_STANDALONE = {0x01, *range(0xD0, 0xD8)}


def find_jpeg(data, start: int = 0) -> tuple[int, int] | None:
    """(begin, end) of the first whole JPEG at or after `start`, or None if there is none.

    Walks the marker segments and skips entropy-coded data, so an EXIF thumbnail or a stray
    FF D9 inside a segment never ends a frame early; bytes between JPEGs are skipped.
    """
    begin = data.find(SOI, start)
    while begin >= 0:
        end = _jpeg_end(data, begin + 2)
        if end > 0:
            return begin, end
        if end == 0:  # ran out of data: the last JPEG is truncated
            return None
        begin = data.find(SOI, begin + 2)  # corrupt: look for the next start
    return None


def _jpeg_end(data, pos: int) -> int:
    """The end of the JPEG whose first marker is at `pos`; 0 if cut short, -1 if corrupt."""
    size = len(data)
    while pos + 2 <= size:
        if data[pos] != 0xFF:
            return -1
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
        elif marker == _EOI_MARKER:
            return pos + 2
        elif marker in _STANDALONE:
            pos += 2
        else:
            if pos + 4 > size:
                return 0
            pos += 2 + ((data[pos + 2] << 8) | data[pos + 3])
            if marker == _SOS:
                pos = _end_of_scan(data, pos)
                if pos < 0:
                    return 0
    return 0


def _end_of_scan(data, pos: int) -> int:
    """The offset of the first real marker after entropy-coded data, or -1 at end of data."""
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= len(data):
            return -1
        following = data[pos + 1]
        if following == 0 or 0xD0 <= following <= 0xD7:  # stuffed byte or restart marker
            pos += 2
        elif following == 0xFF:
            pos += 1
        else:
            return pos


def is_whole_jpeg(data) -> bool:
    return len(data) >= 4 and bytes(data[:2]) == SOI and find_jpeg(data) == (0, len(data))


def jpeg_size(jpeg) -> tuple[int, int]:
    """(width, height) from a JPEG's header, without decoding it."""
    height, width, _colorspace, _subsampling = simplejpeg.decode_jpeg_header(jpeg)
    return width, height


def fit_size(width: int, height: int, max_width: int, max_height: int) -> tuple[int, int]:
    """The largest even size within the limits that keeps the aspect ratio (never upscales)."""
    scale = min(1.0, max_width / width, max_height / height)
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def encode_yuv420(planar: np.ndarray, width: int, height: int, quality: int) -> bytes:
    """Encode a full-range yuvj420p frame (`height * 3 / 2` rows of `width`), no colour conversion."""
    quarter = (height // 2, width // 2)
    chroma = height * width // 4
    flat = planar.reshape(-1)
    y = planar[:height]
    u = flat[height * width : height * width + chroma].reshape(quarter)
    v = flat[height * width + chroma :].reshape(quarter)
    return simplejpeg.encode_jpeg_yuv_planes(y, u, v, quality_percent(quality), fastdct=True)


def encode_yuyv(data, width: int, height: int, quality: int) -> bytes:
    """Encode a packed YUYV 4:2:2 frame (a V4L2 camera's raw format) as a 4:2:2 JPEG."""
    packed = np.frombuffer(data, np.uint8, count=width * height * 2).reshape(height, width * 2)
    y = np.ascontiguousarray(packed[:, 0::2])
    u = np.ascontiguousarray(packed[:, 1::4])
    v = np.ascontiguousarray(packed[:, 3::4])
    return simplejpeg.encode_jpeg_yuv_planes(y, u, v, quality_percent(quality), fastdct=True)


def encode_bgr(image: np.ndarray, quality: int) -> bytes:
    """Encode an OpenCV (BGR) image."""
    return simplejpeg.encode_jpeg(
        image, quality_percent(quality), colorspace="BGR", colorsubsampling="420", fastdct=True
    )
