"""The synthetic camera: a moving aerial scene with a frame counter and clock, encoded once a frame."""

import time
from urllib.parse import parse_qs, urlsplit

import numpy as np
import simplejpeg

from ..core.protocol import (
    DEFAULT_FPS,
    DEFAULT_HEIGHT,
    DEFAULT_QUALITY,
    DEFAULT_WIDTH,
    quality_percent,
)
from ..core.source import Pacer, SourceError

MAX_PIXELS = 3840 * 2160
# A 5x7 bitmap font for the overlay: enough for counters and clocks.
_GLYPHS = {
    "0": "01110 10001 10011 10101 11001 10001 01110",
    "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00010 00100 01000 11111",
    "3": "11110 00001 00001 01110 00001 00001 11110",
    "4": "00010 00110 01010 10010 11111 00010 00010",
    "5": "11111 10000 11110 00001 00001 10001 01110",
    "6": "00110 01000 10000 11110 10001 10001 01110",
    "7": "11111 00001 00010 00100 01000 01000 01000",
    "8": "01110 10001 10001 01110 10001 10001 01110",
    "9": "01110 10001 10001 01111 00001 00010 01100",
    ":": "00000 01100 01100 00000 01100 01100 00000",
    ".": "00000 00000 00000 00000 00000 01100 01100",
    "#": "01010 01010 11111 01010 11111 01010 01010",
    " ": "00000 00000 00000 00000 00000 00000 00000",
}
_FONT = {
    char: np.array([[c == "1" for c in row] for row in rows.split()], dtype=bool)
    for char, rows in _GLYPHS.items()
}


def _draw_text(image: np.ndarray, text: str, x: int, y: int, scale: int) -> None:
    """White text with a dark box behind it, so it reads on any part of the scene."""
    width = len(text) * 6 * scale + scale
    image[y - scale : y + 8 * scale, x - scale : x + width] //= 3
    for i, char in enumerate(text):
        glyph = np.kron(_FONT[char], np.ones((scale, scale), dtype=bool))
        left = x + i * 6 * scale
        image[y : y + glyph.shape[0], left : left + glyph.shape[1]][glyph] = 255


def _terrain(width: int, height: int) -> np.ndarray:
    """Fields, a road and a river seen from above: a tile twice the frame, scrolled per frame.

    Soft edges keep the JPEGs in the OV2640's 5-15 KB range at the default quality.
    """
    ys, xs = np.mgrid[0 : 2 * height, 0 : 2 * width].astype(np.float32)
    fields = (np.sin(xs / 97) + np.sin(ys / 71 + xs / 151)) * 5
    rgb = np.empty((2 * height, 2 * width, 3), dtype=np.float32)
    rgb[..., 0] = 70 + fields
    rgb[..., 1] = 120 + fields * 1.5
    rgb[..., 2] = 60 + fields * 0.5
    river = np.clip(16 - np.abs(ys - height - 90 * np.sin(xs / 120)), 0, 1)[..., None]
    rgb = rgb * (1 - river) + river * np.array([40, 90, 170], np.float32)
    road = 0.8 * np.clip(6 - np.abs(xs % 640 - 320), 0, 1)[..., None]
    rgb = rgb * (1 - road) + road * np.array([150, 150, 145], np.float32)
    return np.clip(rgb, 0, 255).astype(np.uint8)


class SyntheticCamera:
    """A camera that needs no hardware: 640x480 at 30 fps by default, paced without drift.

    Each frame shows the frame number and the wall-clock time, over terrain that scrolls like
    the view from a drone in flight, with a moving object to follow. With `prerender` N > 0
    it renders N frames on open and loops them (`synthetic:?prerender=N`), a source that costs
    almost nothing per frame, for measuring fan-out.
    """

    name = "synthetic"

    def __init__(
        self,
        width: int = DEFAULT_WIDTH,
        height: int = DEFAULT_HEIGHT,
        fps: float = DEFAULT_FPS,
        quality: int = DEFAULT_QUALITY,
        prerender: int = 0,
    ) -> None:
        if width < 160 or height < 120 or width % 16 or height % 16:
            raise ValueError("synthetic frame size must be at least 160x120, in multiples of 16")
        if width * height > MAX_PIXELS:
            # Its terrain is rendered at twice the frame size: 4K takes about 2 GB already.
            raise ValueError(
                "synthetic frames are at most 3840x2160 pixels, not %dx%d" % (width, height)
            )
        if not 0 < fps <= 240:
            raise ValueError("fps must be above 0 and at most 240")
        if not 0 <= prerender <= 3600:
            raise ValueError("prerender must be from 0 to 3600 frames")
        self.width = width
        self.height = height
        self.fps = fps
        self.quality_percent = quality_percent(quality)
        self._terrain: np.ndarray | None = None
        self._pacer: Pacer | None = None
        self.frames = 0
        self.prerender = prerender
        self.encode_us_per_frame = 0.0
        self._loop: list[bytes] = []

    async def open(self) -> None:
        self._terrain = _terrain(self.width, self.height)
        self._pacer = Pacer(self.fps)
        if self.prerender:
            # The benchmark's source: frames rendered once, then looped at almost no cost.
            started_ns = time.perf_counter_ns()
            self._loop = [self.render(number) for number in range(1, self.prerender + 1)]
            self.encode_us_per_frame = (time.perf_counter_ns() - started_ns) / 1000 / self.prerender
            self.frames = 0

    async def read(self) -> bytes:
        assert self._pacer is not None, "open() the camera first"
        await self._pacer.wait()
        if self._loop:
            self.frames += 1
            return self._loop[(self.frames - 1) % len(self._loop)]
        return self.render(self.frames + 1)

    def render(self, number: int) -> bytes:
        """Frame `number` of the scene as a JPEG."""
        if self._terrain is None:
            self._terrain = _terrain(self.width, self.height)
        self.frames = number
        w, h = self.width, self.height
        x = int(w / 2 + w / 2 * np.sin(number / 400)) % w
        y = (number * 3) % h
        image = self._terrain[y : y + h, x : x + w].copy()
        cx = int(w / 2 + w / 3 * np.cos(number / 45))
        cy = int(h / 2 + h / 3 * np.sin(number / 30))
        image[cy - 12 : cy + 12, cx - 20 : cx + 20] = (220, 40, 40)
        scale = max(1, w // 320)
        _draw_text(image, "#%06d" % number, 8 * scale, 6 * scale, scale)
        now = time.time()
        clock = time.strftime("%H:%M:%S", time.localtime(now)) + ".%03d" % (now % 1 * 1000)
        _draw_text(image, clock, w - 75 * scale, 6 * scale, scale)
        return simplejpeg.encode_jpeg(
            image,
            quality=self.quality_percent,
            colorspace="RGB",
            colorsubsampling="420",
            fastdct=True,
        )

    async def close(self) -> None:
        self._terrain = None
        self._pacer = None
        self._loop = []


def from_uri(argument: str, settings) -> SyntheticCamera:
    """`synthetic:`, or `synthetic:?prerender=N` to loop N frames rendered once (the benchmark's).

    Size, fps and quality come from the settings.
    """
    options = parse_qs(urlsplit(argument).query)
    try:
        prerender = int(options.pop("prerender", ["0"])[-1])
    except ValueError:
        raise SourceError("synthetic:?prerender=N takes a number of frames") from None
    if options:
        raise SourceError("unknown synthetic option %s: use ?prerender=N" % ", ".join(options))
    return SyntheticCamera(
        settings.width, settings.height, settings.fps or DEFAULT_FPS, settings.quality, prerender
    )
