"""The soak test: clients join and leave a server for minutes; its resources before and after.

`run_soak()` starts a server (or the firmware) in a child process, or targets a URL; keeps a
few steady clients streaming, and lets others connect, read a little and leave (cleanly or
abruptly) for the whole duration. The server's RSS, open file descriptors and asyncio tasks are read
before the churn and after it, with the same steady clients connected: flat means no leak.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import websockets

from ..client import ReceivedFrame, StreamClient
from ..core import protocol

# A sample of the server's resources; "tasks" only when the server is our own child.
Sample = dict[str, float]


class SoakSettings:
    """How long, how many clients, and what to target (a URL, or a child server by default)."""

    def __init__(
        self,
        duration_s: float = 600.0,
        steady_clients: int = 2,
        churn_clients: int = 3,
        url: str | None = None,
        pid: int | None = None,
        server_args: tuple[str, ...] = (),
        settle_s: float = 2.0,
        samples: int = 10,
        firmware: bool = False,
        heapsize: str | None = None,
    ) -> None:
        if steady_clients < 1 or churn_clients < 0:
            raise ValueError("a soak needs at least one steady client")
        self.duration_s = duration_s
        self.steady_clients = steady_clients
        self.churn_clients = churn_clients
        self.url = url
        self.pid = pid
        self.server_args = server_args
        self.settle_s = settle_s
        self.samples = samples
        self.firmware = firmware
        self.heapsize = heapsize  # the firmware's `-X heapsize` (None: MicroPython's default)


class SoakResult:
    """What a soak measured: resources before/after, sessions, and what the steady clients got."""

    def __init__(self, settings: SoakSettings) -> None:
        self.settings = settings
        self.target = ""
        self.before: Sample = {}
        self.after: Sample = {}
        self.timeline: list[tuple[float, Sample]] = []
        self.sessions = 0
        self.abrupt = 0
        self.refused = 0
        self.failures: list[str] = []
        self.steady_frames = 0
        self.steady_fps: list[float] = []

    @property
    def peak_rss_bytes(self) -> float:
        values = [sample.get("rss_bytes", 0) for _, sample in self.timeline]
        return max([self.before.get("rss_bytes", 0), self.after.get("rss_bytes", 0), *values])

    def flat(self) -> bool:
        """Descriptors, tasks and connections back where they were; RSS within 10 MB, and the
        firmware's heap (after collection, from its heartbeats) within 16 KB."""
        for key in ("fds", "tasks", "connections", "clients"):
            if key in self.before and self.after.get(key) != self.before[key]:
                return False
        heap_growth = self.after.get("heap_used", 0) - self.before.get("heap_used", 0)
        rss_growth = self.after.get("rss_bytes", 0) - self.before.get("rss_bytes", 0)
        return rss_growth <= 10 * 1024 * 1024 and heap_growth <= 16 * 1024

    def as_dict(self) -> dict:
        return {
            "target": self.target,
            "duration_s": self.settings.duration_s,
            "before": self.before,
            "after": self.after,
            "peak_rss_bytes": self.peak_rss_bytes,
            "timeline": self.timeline,
            "sessions": self.sessions,
            "abrupt": self.abrupt,
            "refused": self.refused,
            "failures": self.failures,
            "steady_frames": self.steady_frames,
            "steady_fps": self.steady_fps,
            "flat": self.flat(),
        }

    def report(self) -> str:
        """A Markdown table for BENCHMARKS.md."""
        rows = [
            ("server RSS (MB)", "rss_bytes", 1 / 1e6),
            ("firmware heap used (KB)", "heap_used", 1 / 1024),
            ("open file descriptors", "fds", 1),
            ("asyncio tasks", "tasks", 1),
            ("connections", "connections", 1),
            ("clients (per heartbeat)", "clients", 1),
        ]
        lines = ["| | before | after |", "|---|---|---|"]
        for label, key, scale in rows:
            if key in self.before:
                lines.append(
                    "| %s | %s | %s |"
                    % (label, _figure(self.before[key] * scale), _figure(self.after[key] * scale))
                )
        fps = ", ".join("%.1f" % value for value in self.steady_fps)
        lines += [
            "",
            "%s for %.0f s: %d client sessions joined and left (%d abruptly), %d refused as full; "
            "peak RSS %.1f MB; steady clients' fps: %s; %s."
            % (
                self.target,
                self.settings.duration_s,
                self.sessions,
                self.abrupt,
                self.refused,
                self.peak_rss_bytes / 1e6,
                fps,
                "flat" if self.flat() else "NOT FLAT",
            ),
        ]
        if self.failures:
            lines.append("Failures: %s" % "; ".join(self.failures[:10]))
        return "\n".join(lines)


def _figure(value: float) -> str:
    return "%d" % value if float(value).is_integer() else "%.1f" % value


class ChildServer:
    """`dronecam.tools.soak --child` in a subprocess: a server that reports its own resources."""

    def __init__(self, server_args: tuple[str, ...]) -> None:
        self.server_args = server_args
        self.process: asyncio.subprocess.Process | None = None
        self.url = ""

    async def start(self) -> None:
        # The child runs this very package, installed or not.
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        paths = [package_root, os.environ.get("PYTHONPATH", "")]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(path for path in paths if path))
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "dronecam.tools.soak",
            "--child",
            *self.server_args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), 30)
        if not line.startswith(b"READY "):
            raise RuntimeError("the soak server did not start: %r" % line)
        self.url = line.split()[1].decode()

    async def sample(self) -> Sample:
        assert self.process is not None and self.process.stdin and self.process.stdout
        self.process.stdin.write(b"sample\n")
        await self.process.stdin.drain()
        return json.loads(await asyncio.wait_for(self.process.stdout.readline(), 10))

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


class FirmwareChild:
    """The firmware under the MicroPython unix port, stand-in camera: measured from outside."""

    def __init__(self, max_clients: int, heapsize: str | None = None) -> None:
        self.max_clients = max_clients
        self.heapsize = heapsize
        self.firmware: Any = None  # a tools.firmware.HostFirmware once started
        self.probe = ProcessProbe(None)
        self.url = ""
        self._temp = tempfile.TemporaryDirectory(prefix="dronecam-soak-")

    async def start(self) -> None:
        from .firmware import HostFirmware, build_bundle, synthetic_frames_for, write_frames

        root = Path(self._temp.name)
        build_bundle(root / "bundle")
        frames = write_frames(root / "frames", synthetic_frames_for(self.heapsize))
        self.firmware = HostFirmware(
            frames, root, heapsize=self.heapsize, max_clients=self.max_clients
        )
        await self.firmware.start()
        assert self.firmware.process is not None
        self.url = self.firmware.url
        self.probe = ProcessProbe(self.firmware.process.pid)

    async def sample(self) -> Sample:
        return await self.probe.sample()

    async def stop(self) -> None:
        if self.firmware is not None:
            await self.firmware.stop()
        self._temp.cleanup()


class ProcessProbe:
    """An external server (the firmware, a `dronecam serve`): its process seen from outside."""

    def __init__(self, pid: int | None) -> None:
        self.process = psutil.Process(pid) if pid else None

    async def sample(self) -> Sample:
        if self.process is None:
            return {}
        return {"rss_bytes": self.process.memory_info().rss, "fds": self.process.num_fds()}


class Steady:
    """A client that stays for the whole soak and counts its frames and heartbeats."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.frames = 0
        self.clients = -1
        self.heap_used: int | None = None  # the firmware's, from its heartbeats
        self.connected = asyncio.Event()
        self.started = 0.0

    async def run(self) -> None:
        async with StreamClient(self.url, window=None) as client:
            self.started = time.monotonic()
            self.connected.set()
            async for item in client:
                if isinstance(item, ReceivedFrame):
                    self.frames += 1
                elif item.type == "heartbeat":
                    self.clients = item.data["clients"]
                    self.heap_used = item.data.get("heap_used")


async def _churn(url: str, result: SoakResult, stop: asyncio.Event, rng: random.Random) -> None:
    """Connect, read for a moment, maybe ask for stats, leave: cleanly or by dropping the socket."""
    while not stop.is_set():
        try:
            async with websockets.connect(url, max_size=None, ping_interval=None) as ws:
                welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if welcome.get("error") == "server_full":
                    result.refused += 1
                    await asyncio.sleep(rng.uniform(0.05, 0.3))
                    continue
                result.sessions += 1
                deadline = time.monotonic() + rng.uniform(0.1, 1.5)
                if rng.random() < 0.3:
                    await ws.send(protocol.GET_STATS)
                while time.monotonic() < deadline:
                    await asyncio.wait_for(ws.recv(), 10)
                if rng.random() < 0.4:
                    result.abrupt += 1
                    ws.transport.abort()
        except websockets.ConnectionClosed:
            pass
        except (OSError, TimeoutError, websockets.InvalidHandshake) as error:
            result.failures.append("%s: %s" % (type(error).__name__, error))
            await asyncio.sleep(0.5)


async def _wait_for_clients(steady: list[Steady], count: int, timeout_s: float) -> None:
    """Until the server's heartbeats count exactly `count` clients (the churn has left)."""
    deadline = time.monotonic() + timeout_s
    while any(client.clients != count for client in steady) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)


async def run_soak(
    settings: SoakSettings | None = None, log: Callable[[str], None] = print
) -> SoakResult:
    """Run one soak and return what it measured (see the module docstring)."""
    settings = settings or SoakSettings()
    result = SoakResult(settings)
    child: ChildServer | FirmwareChild | None = None
    if settings.firmware:
        child = FirmwareChild(settings.steady_clients + settings.churn_clients, settings.heapsize)
    elif not settings.url:
        child = ChildServer(settings.server_args)
    probe: ChildServer | FirmwareChild | ProcessProbe
    if child is not None:
        await child.start()
        url, probe = child.url, child
        result.target = (
            "firmware (MicroPython unix port, child process, heap %s)"
            % (settings.heapsize or "default")
            if settings.firmware
            else "dronecam serve (child process)"
        )
    else:
        assert settings.url is not None
        url, probe = settings.url, ProcessProbe(settings.pid)
        result.target = settings.url
    steady = [Steady(url) for _ in range(settings.steady_clients)]
    tasks = [asyncio.create_task(client.run()) for client in steady]
    stop = asyncio.Event()
    try:
        await asyncio.wait_for(asyncio.gather(*(c.connected.wait() for c in steady)), 30)
        await _wait_for_clients(steady, settings.steady_clients, 10)
        await asyncio.sleep(settings.settle_s)
        result.before = await _sample(probe, steady)
        log("soak: %s, before: %s" % (url, result.before))
        rng = random.Random(6)
        churners = [
            asyncio.create_task(_churn(url, result, stop, rng))
            for _ in range(settings.churn_clients)
        ]
        tasks += churners
        start = time.monotonic()
        frames_at_start = [client.frames for client in steady]
        interval_s = settings.duration_s / max(1, settings.samples)
        while (elapsed := time.monotonic() - start) < settings.duration_s:
            await asyncio.sleep(min(interval_s, settings.duration_s - elapsed))
            for task in tasks:
                if task.done():
                    task.result()  # a steady client that ended is a failed soak
            sample = await _sample(probe, steady)
            result.timeline.append((round(time.monotonic() - start, 1), sample))
            log(
                "soak: %4.0f s, %d sessions, %s"
                % (time.monotonic() - start, result.sessions, sample)
            )
        elapsed = time.monotonic() - start
        frames_at_end = [client.frames for client in steady]
        stop.set()
        await asyncio.wait_for(asyncio.gather(*churners), 30)
        await _wait_for_clients(steady, settings.steady_clients, 10)
        await asyncio.sleep(settings.settle_s)
        result.after = await _sample(probe, steady)
        log("soak: after: %s" % result.after)
        result.steady_frames = sum(frames_at_end) - sum(frames_at_start)
        result.steady_fps = [
            round((last - first) / elapsed, 1)
            for first, last in zip(frames_at_start, frames_at_end, strict=True)
        ]
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if child is not None:
            await child.stop()
    return result


async def _sample(
    probe: ChildServer | FirmwareChild | ProcessProbe, steady: list[Steady]
) -> Sample:
    sample = await probe.sample()
    sample["clients"] = steady[0].clients
    if steady[0].heap_used is not None:
        sample["heap_used"] = steady[0].heap_used
    return sample


# The child: a server on a free port that answers "sample" on stdin with its own resources.
def _child_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dronecam.tools.soak --child")
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--source", default="synthetic:")
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--fps", type=float, default=protocol.DEFAULT_FPS)
    parser.add_argument("--max-clients", type=int, default=protocol.MAX_CLIENTS)
    return parser


async def _serve_child(args: argparse.Namespace) -> None:
    from ..server import ServerSettings, build_server
    from ..sources import SourceSettings, make_source

    width, height = (int(part) for part in args.size.split("x"))
    source = make_source(args.source, SourceSettings(width, height, args.fps))
    settings = ServerSettings(host="127.0.0.1", port=0, max_clients=args.max_clients)
    server = build_server(source, settings, log=lambda message: None)
    await server.feed.open()
    await server.start()
    process = psutil.Process()
    loop = asyncio.get_running_loop()
    print("READY %s" % server.url, flush=True)
    try:
        while await loop.run_in_executor(None, sys.stdin.readline):
            # Short-lived tasks come and go between samples: count the most seen.
            tasks = []
            for _ in range(5):
                tasks.append(len(asyncio.all_tasks()))
                await asyncio.sleep(0.011)
            sample = {
                "rss_bytes": process.memory_info().rss,
                "fds": process.num_fds(),
                "tasks": max(tasks),
                "connections": len(server.connections),
            }
            print(json.dumps(sample), flush=True)
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    args = _child_parser().parse_args(argv)
    if not args.child:
        print("use `dronecam soak`; --child runs the soak's own server", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_child(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
