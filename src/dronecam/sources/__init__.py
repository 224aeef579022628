"""Camera sources, one module per kind, chosen by a `--source` URI (docs/sources.md)."""

from __future__ import annotations

from importlib import import_module

from ..core.protocol import DEFAULT_HEIGHT, DEFAULT_QUALITY, DEFAULT_WIDTH
from ..core.source import SourceError


class SourceSettings:
    """The controls every source is offered; each uses those that apply to it.

    `fps` None means the source's own rate: a file's timestamps, a camera's default, 30
    for the synthetic camera.
    """

    def __init__(
        self,
        width: int = DEFAULT_WIDTH,
        height: int = DEFAULT_HEIGHT,
        fps: float | None = None,
        quality: int = DEFAULT_QUALITY,
        loop: bool = False,
    ) -> None:
        if fps is not None and not 0 < fps <= 240:
            raise ValueError("fps must be above 0 and at most 240")
        self.width = width
        self.height = height
        self.fps = fps
        self.quality = quality
        self.loop = loop


# URI scheme -> (module, factory): each kind's backend is imported only when it is chosen.
_KINDS = {
    "synthetic": ("synthetic", "from_uri"),
    "v4l2": ("v4l2", "V4L2Camera"),
    "opencv": ("opencv", "OpenCVCapture"),
    "file": ("file", "FileSource"),
    "picamera2": ("picam", "PiCamera"),
    "ws": ("relay", "RelaySource"),
    "wss": ("relay", "RelaySource"),
    "nats": ("nats", "from_uri"),
}


def make_source(uri: str, settings: SourceSettings | None = None):
    """The source a `--source` URI names, not yet opened.

    Raises:
        SourceError: the URI names no known kind of source, or its argument is wrong.
    """
    kind, colon, argument = uri.partition(":")
    if not colon or kind not in _KINDS:
        raise SourceError(
            "unknown source %r: use synthetic:, v4l2:/dev/video0, opencv:0, file:PATH, "
            "picamera2:, ws://HOST:PORT/ws or nats://HOST:PORT/NAME (docs/sources.md)" % uri
        )
    module_name, factory = _KINDS[kind]
    module = import_module("." + module_name, __name__)
    target = uri if kind in ("ws", "wss", "nats") else argument
    return getattr(module, factory)(target, settings or SourceSettings())
