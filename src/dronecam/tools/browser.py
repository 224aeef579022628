"""Debian's Chromium as the tests and the viewer benchmark start it, and the viewer's file URL."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from urllib.parse import urlencode

CHROMIUM = "/usr/bin/chromium"

# Headless, with nothing reaching out to the network on its own.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def viewer_file_url(**params: str) -> str:
    """The page from disk (file://), with settings in its query string."""
    path = Path(str(files("dronecam") / "viewer.html")).resolve()
    return path.as_uri() + ("?" + urlencode(params) if params else "")
