"""Sources and relay benchmark: latency each relay hop adds, relay CPU per client, and the cost
per frame of MJPEG passthrough against encoding (BENCHMARKS.md, "Sources and relay").

    python -m dronecam.tools.benchmarks.sources [--seconds 8] [--clients 1,10,50]

Servers run as real `dronecam serve` processes on 127.0.0.1; the clients run here.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil
import websockets

from dronecam.client import StreamClient
from dronecam.core.clock import ClockOffset, now_us
from dronecam.core.hub import build_frame
from dronecam.core.protocol import read_tags
from dronecam.sources.jpeg import encode_yuv420, encode_yuyv
from dronecam.sources.synthetic import SyntheticCamera


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _serve(source: str, port: int) -> asyncio.subprocess.Process:
    options = {
        "--host": "127.0.0.1",
        "--port": str(port),
        "--source": source,
        "--max-clients": "500",
    }
    command = [sys.executable, "-m", "dronecam", "serve", "--loop"]
    for option, value in options.items():
        command += [option, value]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    url = "ws://127.0.0.1:%d/ws" % port
    for _ in range(100):
        try:
            async with StreamClient(url) as client:
                async for _frame in client.frames():
                    return process
        except Exception:
            await asyncio.sleep(0.1)
    raise SystemExit("server %s did not start" % url)


async def _clock_offset_us(url: str, samples: int = 40) -> int:
    """The server's clock minus ours, from the `clock` round trip with the least delay."""
    clock = ClockOffset()
    async with websockets.connect(url, max_size=None, compression=None) as ws:
        for _ in range(samples):
            sent_us = now_us()
            await ws.send("clock")
            while True:
                message = await ws.recv()
                if isinstance(message, str) and '"clock"' in message:
                    break
            clock.add(sent_us, now_us(), json.loads(message)["server_us"])
    assert clock.offset_us is not None
    return clock.offset_us


async def _hop_latencies(urls: list[str], seconds: float) -> list[list[float]]:
    """Per frame, from one client at the end of the chain: the time from each hop's capture
    stamp to the next one's, and from the last to arrival here (ms, on one clock)."""
    offsets = [await _clock_offset_us(url) for url in urls]
    legs: list[list[float]] = [[] for _ in urls]
    async with StreamClient(urls[-1]) as client:
        deadline = time.monotonic() + seconds
        async for frame in client.frames():
            tags = list(reversed(read_tags(frame.jpeg)))  # origin first
            local_us = [
                capture_us - offset for (_, capture_us), offset in zip(tags, offsets, strict=True)
            ]
            local_us.append(frame.received_us)
            for leg, (start, end) in zip(legs, itertools.pairwise(local_us), strict=True):
                leg.append((end - start) / 1000)
            if time.monotonic() > deadline:
                return legs
    return legs


async def _clients(url: str, count: int, seconds: float) -> int:
    """`count` clients taking frames for `seconds`; returns the frames they got in all."""
    received = [0]

    async def one() -> None:
        async with StreamClient(url) as client:
            deadline = time.monotonic() + seconds
            async for _frame in client.frames():
                received[0] += 1
                if time.monotonic() > deadline:
                    return

    await asyncio.gather(*(one() for _ in range(count)))
    return received[0]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def relay_bench(seconds: float, client_counts: list[int]) -> None:
    camera = SyntheticCamera()
    jpegs = b"".join(camera.render(n) for n in range(1, 301))
    with tempfile.TemporaryDirectory() as folder:
        frames = Path(folder) / "frames.mjpeg"
        frames.write_bytes(jpegs)
        ports = [_free_port() for _ in range(3)]
        urls = ["ws://127.0.0.1:%d/ws" % port for port in ports]
        processes = [await _serve("file:%s" % frames, ports[0])]
        processes.append(await _serve(urls[0], ports[1]))
        processes.append(await _serve(urls[1], ports[2]))
        try:
            legs = await _hop_latencies(urls, seconds)
            print(
                "\n### Latency added per hop (30 fps 640x480, %d frames through 2 relays)\n"
                % len(legs[0])
            )
            print("| leg | p50 ms | p90 ms | p99 ms |")
            print("|---|---|---|---|")
            names = ("origin -> relay 1", "relay 1 -> relay 2", "relay 2 -> client")
            for name, values in zip(names, legs, strict=True):
                print(
                    "| %s | %.2f | %.2f | %.2f |"
                    % (
                        name,
                        statistics.median(values),
                        _percentile(values, 0.9),
                        _percentile(values, 0.99),
                    )
                )
            total = [sum(parts) for parts in zip(*legs, strict=True)]
            print(
                "| origin -> client, end to end | %.2f | %.2f | %.2f |"
                % (statistics.median(total), _percentile(total, 0.9), _percentile(total, 0.99))
            )

            relay = psutil.Process(processes[1].pid)
            print("\n### Relay CPU per client (relay 1 hop, %.0f s per row)\n" % seconds)
            print(
                "| clients | frames delivered | fps per client | relay CPU % "
                "| CPU us per frame sent, above the idle relay |"
            )
            print("|---|---|---|---|---|")
            idle_share = 0.0
            for count in [0, *client_counts]:
                relay.cpu_times()
                before = relay.cpu_times()
                started = time.monotonic()
                if count:
                    delivered = await _clients(urls[1], count, seconds)
                else:
                    await asyncio.sleep(seconds)
                    delivered = 0
                elapsed = time.monotonic() - started
                after = relay.cpu_times()
                cpu_s = (after.user + after.system) - (before.user + before.system)
                if not count:
                    idle_share = cpu_s / elapsed  # taking the upstream, serving nobody
                per_frame = (
                    "%.0f" % ((cpu_s - idle_share * elapsed) / delivered * 1e6)
                    if delivered
                    else "-"
                )
                print(
                    "| %d | %d | %.1f | %.1f | %s |"
                    % (
                        count,
                        delivered,
                        delivered / elapsed / max(count, 1),
                        100 * cpu_s / elapsed,
                        per_frame,
                    )
                )
        finally:
            for process in processes:
                process.terminate()
                await process.wait()


def _cost_us(function, repeat: int) -> float:
    function()
    start = time.process_time()
    for _ in range(repeat):
        function()
    return (time.process_time() - start) / repeat * 1e6


def _paths(jpeg: bytes, yuyv: bytes, yuv, width: int, height: int) -> dict:
    """What each kind of source does to one frame before the hub has it."""
    import simplejpeg

    def reencode() -> bytes:
        return simplejpeg.encode_jpeg(simplejpeg.decode_jpeg(jpeg), 81, fastdct=True)

    return {
        "MJPEG passthrough (copy + tag + frame)": lambda: build_frame(bytes(jpeg), 1, 0),
        "YUYV encoded once (v4l2 fallback)": lambda: build_frame(
            encode_yuyv(yuyv, width, height, 12), 1, 0
        ),
        "yuv420 encoded (file: video decode path, encode only)": lambda: build_frame(
            encode_yuv420(yuv, width, height, 12), 1, 0
        ),
        "JPEG decoded + re-encoded": lambda: build_frame(reencode(), 1, 0),
    }


def frame_cost_bench(repeat: int) -> None:
    import av
    import numpy as np
    import simplejpeg

    print("\n### Cost per frame, CPU time (%d frames each)\n" % repeat)
    print("| size | path | us per frame | x passthrough |")
    print("|---|---|---|---|")
    for width, height in ((640, 480), (1280, 720)):
        camera = SyntheticCamera(width, height)
        jpeg = camera.render(1)
        rgb = simplejpeg.decode_jpeg(jpeg)
        yuv = av.VideoFrame.from_ndarray(rgb, format="rgb24").to_ndarray(format="yuvj420p")
        packed = np.full((height, width * 2), 128, np.uint8)
        packed[:, 0::2] = rgb[..., 1]
        yuyv = packed.tobytes()
        paths = _paths(jpeg, yuyv, yuv, width, height)
        base = None
        for name, function in paths.items():
            cost = _cost_us(function, repeat)
            base = base or cost
            print("| %dx%d | %s | %.0f | %.1f |" % (width, height, name, cost, cost / base))


def record_bench(frames: int) -> None:
    """What `dronecam record` costs per frame and per second of video, by container."""
    from dronecam.record import Recording

    camera = SyntheticCamera()
    jpegs = [camera.render(n) for n in range(1, frames + 1)]
    print("\n### Recording %d frames of 640x480 at 30 fps (CPU time)\n" % frames)
    print("| output | us per frame | x .mkv | file KB | KB per s of video |")
    print("|---|---|---|---|---|")
    base = None
    with tempfile.TemporaryDirectory() as folder:
        warm_up = Recording(Path(folder) / "warm-up.mkv")  # PyAV's first use loads ffmpeg
        warm_up.write(jpegs[0], 0)
        warm_up.close()
        for suffix in (".mkv", ".avi", ".mp4"):
            recording = Recording(Path(folder) / ("bench" + suffix))
            start = time.process_time()
            for index, jpeg in enumerate(jpegs):
                recording.write(jpeg, index * 33_333)
            recording.close()
            cost = (time.process_time() - start) / frames * 1e6
            base = base or cost
            size_kb = recording.bytes_written / 1024
            print(
                "| %s | %.0f | %.1f | %.0f | %.0f |"
                % (suffix, cost, cost / base, size_kb, size_kb / (frames / 30))
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each measurement")
    parser.add_argument("--clients", default="1,10,50", help="relay client counts")
    parser.add_argument("--repeat", type=int, default=300, help="frames per cost measurement")
    args = parser.parse_args()
    print(
        "## Sources and relay (python %s, %d cores, load %.1f)"
        % (sys.version.split()[0], os.cpu_count() or 0, os.getloadavg()[0])
    )
    frame_cost_bench(args.repeat)
    record_bench(args.repeat)
    asyncio.run(relay_bench(args.seconds, [int(n) for n in args.clients.split(",")]))


if __name__ == "__main__":
    main()
