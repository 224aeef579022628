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
    "connection.py",
    "stream_server.py",
    "dronecam/__init__.py",
    *("dronecam/core/%s" % path.name for path in CORE_DIR.glob("*.py")),
}

# The smallest -X heapsize at which 5 clients stream at 30 fps, with SMALL_HEAP_FRAMES in the
# stand-in camera, was 622k (BENCHMARKS.md, "Smallest heap"). Hostile, storm and soak tests
# run the firmware at that plus 50 KB: room for the handshakes a storm keeps in flight.
SMALL_HEAP = "672k"
SMALL_HEAP_FRAMES = 3

_shared: dict[str, Path] = {}


def shared_dir() -> Path:
    """One bundle and two folders of frames per test session (20, and SMALL_HEAP_FRAMES)."""
    if "root" not in _shared:
        root = Path(tempfile.mkdtemp(prefix="dronecam-fw-tests-"))
        build_bundle(root / "bundle")
        jpegs = synthetic_jpegs(20)
        for folder, count in (("frames", 20), ("frames_small", SMALL_HEAP_FRAMES)):
            (root / folder).mkdir()
            for number, jpeg in enumerate(jpegs[:count], 1):
                (root / folder / ("%05d.jpg" % number)).write_bytes(jpeg)
        _shared["root"] = root
    return _shared["root"]


@contextlib.asynccontextmanager
async def firmware_server(
    small_heap: bool = False, env: dict[str, str] | None = None, **overrides
) -> AsyncIterator[HostFirmware]:
    """The firmware serving on 127.0.0.1 (a free port), with the stand-in camera; `.url`.

    Args:
        small_heap: run it in SMALL_HEAP with SMALL_HEAP_FRAMES, as short of memory as a
            device can be and still stream to 5 clients; else in MicroPython's default heap.
    """
    root = shared_dir()
    frames, heapsize = (
        (root / "frames_small", SMALL_HEAP) if small_heap else (root / "frames", None)
    )
    firmware = HostFirmware(frames, root, heapsize=heapsize, env=env, **overrides)
    await firmware.start(timeout_s=seconds(10))
    try:
        yield firmware
    finally:
        await firmware.stop()
