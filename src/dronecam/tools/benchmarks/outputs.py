"""Outputs benchmark: server CPU per frame sent to HTTP MJPEG clients against our WebSocket path
and two MJPEG peers, all in one run; H.264 encode cost and glass-to-glass latency (BENCHMARKS.md).

    python -m dronecam.tools.benchmarks.outputs [--clients 100 400] [--seconds 10]

Every server runs in its own process on 127.0.0.1 and is measured with psutil; the clients run
in one more process that counts what it receives. dronecam serves `synthetic:?prerender=60`
(pre-encoded JPEGs: nothing is encoded per frame). The peers are run as their users run them:
PyPI `mjpeg-streamer` is handed numpy frames and encodes for each client (its design);
vidgear's WebGear is given a generator that yields the same pre-encoded JPEGs, so its figure
is its fan-out alone. Needs the `bench` extra (mjpeg-streamer, vidgear, starlette, uvicorn).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time

import psutil

BOUNDARIES = {
    "dronecam-mjpeg": b"--dronecam\r\n",
    "mjpeg-streamer": b"--image-boundary\r\n",
    "webgear": b"--frame\r\n",
}
PATHS = {"dronecam-mjpeg": "/stream.mjpg", "mjpeg-streamer": "/drone", "webgear": "/video"}
KINDS = ("dronecam-mjpeg", "dronecam-ws", "mjpeg-streamer", "webgear")
SOURCE = "synthetic:?prerender=60"
WARM_UP_S = 3.0
MODULE = "dronecam.tools.benchmarks.outputs"  # not __name__: that is __main__ when run


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _prerendered(count: int = 60) -> list[bytes]:
    from dronecam.tools.media import synthetic_jpegs

    return synthetic_jpegs(count)


# Peers, each run in a child process: `python -m ... --peer KIND --port N`.
def run_peer(kind: str, port: int) -> None:
    jpegs = _prerendered()
    if kind == "mjpeg-streamer":
        import cv2
        import numpy as np
        from mjpeg_streamer import MjpegServer, Stream

        frames = [cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR) for jpeg in jpegs]
        stream = Stream("drone", quality=81, fps=30)
        server = MjpegServer("127.0.0.1", port)
        server.add_stream(stream)
        server.start()
        index = 0
        while True:  # the camera: a new frame every 1/30 s, as its README's loop does
            stream.set_frame(frames[index % len(frames)])
            index += 1
            time.sleep(1 / 30)
    elif kind == "webgear":
        import uvicorn
        from vidgear.gears.asyncio import WebGear

        async def producer():
            index = 0
            while True:
                jpeg = jpegs[index % len(jpegs)]
                index += 1
                yield b"--frame\r\nContent-Type:image/jpeg\r\n\r\n" + jpeg + b"\r\n"
                await asyncio.sleep(1 / 30)

        options: dict = {"skip_generate_webdata": True}  # it would fetch page files online
        web = WebGear(logging=False, **options)
        web.config["generator"] = producer  # type: ignore[assignment]
        uvicorn.run(web(), host="127.0.0.1", port=port, log_level="error")
    else:
        raise SystemExit("unknown peer %s" % kind)


def start_server(kind: str, port: int, extra: tuple[str, ...] = ()) -> subprocess.Popen:
    if kind.startswith("dronecam"):
        command = [sys.executable, "-m", "dronecam", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--max-clients", "1000", "--source", SOURCE, "--http"]
        command += list(extra)
    else:
        command = [sys.executable, "-m", MODULE, "--peer", kind, "--port", str(port)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_listening(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the server on port %d did not start" % port)


# Clients, in a child process: `python -m ... --clients-of KIND --port N -n N --seconds S`.
async def _count_mjpeg(port: int, path: str, boundary: bytes, counts: list[int], slot: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path.encode())
    tail = b""
    while chunk := await reader.read(262144):
        data = tail + chunk
        counts[slot] += data.count(boundary)
        tail = data[-len(boundary) + 1 :]


async def _count_websocket(port: int, counts: list[int], slot: int) -> None:
    from dronecam.tools.wire import handshake_request

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(handshake_request("ws://127.0.0.1:%d/ws" % port)[0])
    await reader.readuntil(b"\r\n\r\n")
    buffer = bytearray()
    while chunk := await reader.read(262144):
        buffer += chunk
        position = 0
        while len(buffer) - position >= 2:
            opcode, length = buffer[position] & 0x0F, buffer[position + 1] & 0x7F
            header = 2
            if length == 126:
                header, length = 4, int.from_bytes(buffer[position + 2 : position + 4], "big")
            elif length == 127:
                header, length = 10, int.from_bytes(buffer[position + 2 : position + 10], "big")
            if len(buffer) - position < header + length:
                break
            counts[slot] += opcode == 2
            position += header + length
        del buffer[:position]


async def run_clients(kind: str, port: int, clients: int, seconds: float) -> None:
    counts = [0] * clients
    if kind == "dronecam-ws":
        tasks = [asyncio.create_task(_count_websocket(port, counts, i)) for i in range(clients)]
    else:
        tasks = [
            asyncio.create_task(_count_mjpeg(port, PATHS[kind], BOUNDARIES[kind], counts, i))
            for i in range(clients)
        ]
    await asyncio.sleep(WARM_UP_S)
    start = list(counts)
    print("start", flush=True)
    began = time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - began
    received = [now - before for now, before in zip(counts, start, strict=True)]
    print(json.dumps({"received": received, "seconds": elapsed}), flush=True)
    for task in tasks:
        task.cancel()


def fan_out(kind: str, clients: int, seconds: float) -> dict:
    port = free_port()
    server = start_server(kind, port)
    try:
        wait_listening(port)
        time.sleep(1)
        probe = psutil.Process(server.pid)
        command = [sys.executable, "-m", MODULE, "--clients-of", kind, "--port", str(port)]
        command += ["-n", str(clients), "--seconds", str(seconds)]
        counter = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert counter.stdout is not None
        assert counter.stdout.readline().strip() == "start"
        cpu_before = sum(probe.cpu_times()[:2])
        result = json.loads(counter.stdout.readline())
        cpu_s = sum(probe.cpu_times()[:2]) - cpu_before
        rss_mb = probe.memory_info().rss / 1e6
        counter.wait(30)
    finally:
        server.terminate()
        server.wait(10)
    received = result["received"]
    frames = sum(received)
    per_client_fps = sorted(count / result["seconds"] for count in received)
    return {
        "server": kind,
        "clients": clients,
        "fps_median": round(statistics.median(per_client_fps), 1),
        "fps_min": round(per_client_fps[0], 1),
        "server_cpu_pct": round(100 * cpu_s / result["seconds"], 1),
        "cpu_us_per_frame_sent": round(cpu_s * 1e6 / frames, 1) if frames else None,
        "rss_mb": round(rss_mb, 1),
    }


async def _h264_latency(seconds: float) -> dict:
    """Encode cost (server CPU with --h264 minus without) and capture-to-decoded latency."""
    from dronecam.client import StreamClient
    from dronecam.tools.h264_player import play

    figures: dict = {}
    h264_url = "udp://127.0.0.1:%d" % free_port()
    runs: tuple[tuple[str, tuple[str, ...]], ...] = (("off", ()), ("on", ("--h264", h264_url)))
    for label, extra in runs:
        port = free_port()
        server = start_server("dronecam", port, extra)
        try:
            wait_listening(port)
            probe = psutil.Process(server.pid)
            url = "ws://127.0.0.1:%d/ws" % port
            latencies_ws: list[float] = []

            async def watch(client: StreamClient, latencies: list[float]) -> None:
                async for frame in client.frames():
                    if frame.latency_ms is not None:
                        latencies.append(frame.latency_ms)

            async with StreamClient(url) as client:
                watcher = asyncio.create_task(watch(client, latencies_ws))
                await asyncio.sleep(WARM_UP_S)
                offset = client.clock_offset_us
                cpu_before, started = sum(probe.cpu_times()[:2]), time.monotonic()
                if label == "on":
                    reception = await asyncio.to_thread(play, h264_url, int(seconds * 30))
                else:
                    await asyncio.sleep(seconds)
                cpu_s = sum(probe.cpu_times()[:2]) - cpu_before
                elapsed = time.monotonic() - started
                stats = await client.get_stats()
                watcher.cancel()
        finally:
            server.terminate()
            server.wait(10)
        figures[label] = {"cpu_pct": 100 * cpu_s / elapsed, "stats": stats}
        figures["ws_latency_ms"] = sorted(latencies_ws)
        if label == "on":
            assert offset is not None
            figures["h264_latency_ms"] = sorted(reception.latencies_ms(offset))
            figures["h264_fps"] = reception.fps()
    fps = figures["on"]["stats"].get("fps") or 30
    extra_cpu_ms = (figures["on"]["cpu_pct"] - figures["off"]["cpu_pct"]) * 10 / fps
    latency = figures["h264_latency_ms"]
    ws = figures["ws_latency_ms"]
    return {
        "h264_encode_ms_reported": figures["on"]["stats"].get("h264_encode_ms"),
        "server_cpu_pct_without": round(figures["off"]["cpu_pct"], 1),
        "server_cpu_pct_with": round(figures["on"]["cpu_pct"], 1),
        "extra_cpu_ms_per_frame": round(extra_cpu_ms, 2),
        "h264_fps_decoded": round(figures["h264_fps"], 1),
        "h264_skipped": figures["on"]["stats"].get("h264_skipped"),
        "latency_h264_p50_ms": round(latency[len(latency) // 2], 1),
        "latency_h264_p99_ms": round(latency[int(len(latency) * 0.99)], 1),
        "latency_ws_p50_ms": round(ws[len(ws) // 2], 1),
        "latency_ws_p99_ms": round(ws[int(len(ws) * 0.99)], 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[100, 400])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--servers", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--no-h264", action="store_true", help="skip the H.264 figures")
    parser.add_argument("--peer", help=argparse.SUPPRESS)
    parser.add_argument("--clients-of", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("-n", type=int, default=100, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peer:
        run_peer(args.peer, args.port)
        return 0
    if args.clients_of:
        from dronecam.server import raise_open_files_limit

        raise_open_files_limit(args.n)
        asyncio.run(run_clients(args.clients_of, args.port, args.n, args.seconds))
        return 0
    from dronecam.server import raise_open_files_limit

    raise_open_files_limit(max(args.clients) + 64)
    print("cpu count %d, load %s" % (os.cpu_count() or 0, os.getloadavg()))
    rows = []
    for clients in args.clients:
        for kind in args.servers:
            row = fan_out(kind, clients, args.seconds)
            rows.append(row)
            print(json.dumps(row), flush=True)
    for clients in args.clients:
        same = [row for row in rows if row["clients"] == clients and row["cpu_us_per_frame_sent"]]
        mine = next((row for row in same if row["server"] == "dronecam-mjpeg"), None)
        for row in same:
            if mine:
                ratio = mine["cpu_us_per_frame_sent"] / row["cpu_us_per_frame_sent"]
                print(
                    "%d clients: dronecam MJPEG / %s = %.2fx CPU per frame sent"
                    % (clients, row["server"], ratio)
                )
    if not args.no_h264:
        print(json.dumps(asyncio.run(_h264_latency(args.seconds))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
