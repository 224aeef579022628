"""What every command shares: a parser that answers mistakes in one line, bounded option types."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from types import ModuleType

# No camera source here goes past 8K; JPEG itself allows 65535 a side.
MAX_SIDE = 8192


@functools.cache
def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version("dronecam")
    except PackageNotFoundError:  # run from a source tree that was never installed
        from .. import __version__

        return __version__


class Parser(argparse.ArgumentParser):
    """argparse with `--version` on every command and one-line errors (no usage dump)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument(
            "--version",
            action="version",
            version="dronecam %s" % version(),
            help="print the version",
        )

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, "%s: %s (see %s --help)\n" % (self.prog, message, self.prog))


def integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high` (no upper bound if None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError("%r is not a whole number" % text) from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(_bounds(text, low, high))
        return value

    return parse


def positive(text: str) -> float:
    """An argparse type: a number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number" % text) from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("must be above 0, not %s" % text)
    return value


def frame_size(text: str) -> tuple[int, int]:
    """An argparse type: WIDTHxHEIGHT, each side from 16 to MAX_SIDE pixels."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError("must look like 640x480, not %r" % text) from None
    if not (16 <= width <= MAX_SIDE and 16 <= height <= MAX_SIDE):
        raise argparse.ArgumentTypeError(
            "%s: each side must be from 16 to %d pixels" % (text, MAX_SIDE)
        )
    return width, height


def _bounds(text: str, low: int, high: int | None) -> str:
    if high is None:
        return "must be at least %d, not %s" % (low, text)
    return "must be from %d to %d, not %s" % (low, high, text)


PORT = integer(0, 65535)


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import an optional dependency, or exit with one line naming the extra to install."""
    try:
        return import_module(module)
    except ImportError:
        raise SystemExit(
            "dronecam: %s needs %s: pip install 'dronecam[%s]'" % (what, module, extra)
        ) from None


def new_file(text: str, overwrite: bool, ours: Callable[[Path], bool] | None = None) -> Path:
    """Where a command will write: its folder must exist, and an existing file is kept
    unless `overwrite` (or `ours(path)` says the command wrote it itself before).

    Raises:
        SystemExit: with one line saying what is wrong and what to do.
    """
    path = Path(text)
    folder = path.parent
    if not folder.is_dir():
        raise SystemExit("dronecam: cannot write %s: there is no folder %s" % (path, folder))
    if path.is_dir():
        raise SystemExit("dronecam: cannot write %s: it is a folder; name a file" % path)
    # Only a regular file is kept: /dev/null or a named pipe is a place to write to.
    if path.is_file() and not overwrite and not (ours is not None and ours(path)):
        raise SystemExit("dronecam: %s exists; add --overwrite to replace it" % path)
    return path


def add_overwrite(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the output file if it exists"
    )
