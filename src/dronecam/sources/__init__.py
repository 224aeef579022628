"""Camera sources, one module per kind, chosen by a `--source` URI (docs/sources.md)."""

from __future__ import annotations

from ..core.protocol import DEFAULT_FPS, DEFAULT_HEIGHT, DEFAULT_QUALITY, DEFAULT_WIDTH
from ..core.source import SourceError


class SourceSettings:
    """The controls every source is offered; each uses those that apply to it."""

    def __init__(
        self,
        width: int = DEFAULT_WIDTH,
        height: int = DEFAULT_HEIGHT,
        fps: float = DEFAULT_FPS,
        quality: int = DEFAULT_QUALITY,
        loop: bool = False,
    ) -> None:
        self.width = width
        self.height = height
        self.fps = fps
        self.quality = quality
        self.loop = loop


def make_source(uri: str, settings: SourceSettings | None = None):
    """The source a `--source` URI names, not yet opened.

    Raises:
        SourceError: the URI names no known kind of source.
    """
    settings = settings or SourceSettings()
    kind = uri.partition(":")[0]
    if kind == "synthetic":
        from .synthetic import SyntheticCamera

        return SyntheticCamera(settings.width, settings.height, settings.fps, settings.quality)
    raise SourceError("unknown source %r: use synthetic:" % uri)
