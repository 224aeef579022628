"""The firmware under the real MicroPython unix port on loopback, for tests and benchmarks."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from importlib.resources import files
from pathlib import Path

from dronecam.tools.firmware import HostFirmware, build_bundle
from support import seconds, synthetic_jpegs

# What build_bundle writes: the device layout, every core module, and no host stand-ins.
CORE_DIR = Path(str(files("dronecam") / "core"))
DEVICE_FILES = {
    "boot.py",
    "main.py",
    "config.py",
    "device.py",
    "boards.py",
    "ov2640.py",
    "frame_ring.py",
    "stream_server.py",
    "dronecam/__init__.py",
    *("dronecam/core/%s" % path.name for path in CORE_DIR.glob("*.py")),
}

_shared: dict[str, Path] = {}


def shared_dir() -> Path:
    """One bundle and one folder of frames per test session, built on first use."""
    if "root" not in _shared:
        root = Path(tempfile.mkdtemp(prefix="dronecam-fw-tests-"))
        build_bundle(root / "bundle")
        frames = root / "frames"
        frames.mkdir()
        for number, jpeg in enumerate(synthetic_jpegs(20), 1):
            (frames / ("%05d.jpg" % number)).write_bytes(jpeg)
        _shared["root"] = root
    return _shared["root"]


@contextlib.asynccontextmanager
async def firmware_server(
    heapsize: str | None = None, env: dict[str, str] | None = None, **overrides
) -> AsyncIterator[HostFirmware]:
    """The firmware serving on 127.0.0.1 (a free port), with the stand-in camera; `.url`."""
    root = shared_dir()
    firmware = HostFirmware(root / "frames", root, heapsize=heapsize, env=env, **overrides)
    await firmware.start(timeout_s=seconds(10))
    try:
        yield firmware
    finally:
        await firmware.stop()
