"""One benchmark run: start a server process, connect the client processes, measure, sum up.

Every process gets a deadline, so a run ends by itself even if the bench is killed or a peer
hangs; the bench stops whatever it started on the way out.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import queue as queues
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .clients import client_process
from .servers import SERVER_KINDS, server_process

START_TIMEOUT_S = 20.0
WARMUP_S = 2.0
LAG_CHECKPOINTS_S = (10, 30, 55)


class BenchSettings:
    """What `dronecam bench` configures."""

    def __init__(
        self,
        clients: int = 5,
        seconds: float = 20.0,
        processes: int = 1,
        slow: int = 0,
        credit: int = 0,
        rcvbuf: int = 0,
        servers: tuple[str, ...] = ("dronecam",),
        url: str | None = None,
        server_pid: int | None = None,
        source: str = "synthetic:?prerender=60",
        fps: float = 30.0,
        max_clients: int | None = None,
        send_buffer: int = 32 * 1024,
        uvloop: bool = False,
        client_uvloop: bool | None = None,
        repeat: int = 1,
        profile: str | None = None,
    ) -> None:
        if clients < 0 or slow < 0 or clients + slow < 1:
            raise ValueError("run at least one client")
        if not 1 <= processes <= 64:
            raise ValueError("--processes must be from 1 to 64")
        if seconds <= 0:
            raise ValueError("--seconds must be above 0")
        unknown = set(servers) - set(SERVER_KINDS)
        if unknown:
            raise ValueError(
                "unknown server %s: use %s or all" % (", ".join(unknown), "|".join(SERVER_KINDS))
            )
        self.clients = clients
        self.seconds = seconds
        self.processes = processes
        self.slow = slow
        self.credit = credit
        self.rcvbuf = rcvbuf
        self.servers = servers if url is None else ("external",)
        self.url = url
        self.server_pid = server_pid
        self.source = source
        self.fps = fps
        self.max_clients = max_clients or clients + slow
        self.send_buffer = send_buffer
        self.uvloop = uvloop
        if (
            client_uvloop is None
        ):  # clients as cheap as they can be, so the server is what's measured
            client_uvloop = importlib.util.find_spec("uvloop") is not None
        self.client_uvloop = client_uvloop
        self.repeat = repeat
        self.profile = profile

    def describe(self) -> dict[str, Any]:
        return {key: value for key, value in vars(self).items() if not key.startswith("_")}


class ServerProbe:
    """CPU time and RSS of the server process, read from outside (psutil)."""

    def __init__(self, pid: int | None) -> None:
        self.process = None
        if pid is not None:
            import psutil

            self.process = psutil.Process(pid)

    def cpu_s(self) -> float | None:
        if self.process is None:
            return None
        times = self.process.cpu_times()
        return float(times.user + times.system)

    def rss_mb(self) -> float | None:
        if self.process is None:
            return None
        return float(self.process.memory_info().rss) / 2**20


def run_one(settings: BenchSettings, kind: str, on_event: Callable[[tuple], None]) -> dict:
    """Benchmark one server kind; `on_event` sees progress tuples for a live display."""
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    stop = context.Event()
    start_at = context.Value("d", 0.0)
    end_at = context.Value("d", 0.0)
    deadline = time.monotonic() + START_TIMEOUT_S * 2 + WARMUP_S + settings.seconds + 30
    started: list = []
    try:
        url, pid = settings.url, settings.server_pid
        if url is None:
            options = {
                "source": settings.source,
                "fps": settings.fps,
                "max_clients": settings.max_clients,
                "send_buffer": settings.send_buffer,
                "uvloop": settings.uvloop and kind == "dronecam",
                "deadline": deadline,
                "profile": settings.profile if kind == "dronecam" else None,
            }
            server = context.Process(
                target=server_process, args=(kind, options, events, stop), daemon=True
            )
            server.start()
            started.append(server)
            url = _expect(events, "server", START_TIMEOUT_S)[2]
            pid = server.pid
        on_event(("phase", "connecting %d clients to %s" % (settings.clients + settings.slow, url)))
        probe = ServerProbe(pid)
        for job in _jobs(settings, url, deadline):
            worker = context.Process(
                target=client_process, args=(job, events, start_at, end_at), daemon=True
            )
            worker.start()
            started.append(worker)
        ready = [
            _expect(events, "ready", START_TIMEOUT_S * 2, on_event)
            for _ in range(settings.processes)
        ]
        connected = sum(item[2] for item in ready)
        errors = sorted({error for item in ready for error in item[3]})
        start_s = time.monotonic() + WARMUP_S
        end_s = start_s + settings.seconds
        start_at.value, end_at.value = start_s, end_s
        on_event(("phase", "warming up"))
        figures = _measure(probe, start_s, end_s, events, on_event, settings.processes)
        stop.set()
        for process in started:
            process.join(timeout=10)
        result = _summarise(settings, kind, figures)
        result["connected"] = connected
        result["connect_errors"] = errors
        return result
    finally:
        stop.set()
        for process in started:
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)


def _jobs(settings: BenchSettings, url: str, deadline: float) -> list[dict[str, Any]]:
    jobs = []
    for index in range(settings.processes):
        share = settings.clients // settings.processes
        share += 1 if index < settings.clients % settings.processes else 0
        jobs.append(
            {
                "index": index,
                "url": url,
                "clients": share,
                "slow": settings.slow if index == 0 else 0,
                "credit": settings.credit,
                "rcvbuf": settings.rcvbuf,
                "uvloop": settings.client_uvloop,
                "deadline": deadline,
            }
        )
    return jobs


def _expect(events, kind: str, timeout_s: float, on_event=None) -> tuple:
    """The next event of `kind` from the processes, passing others to `on_event`."""
    until = time.monotonic() + timeout_s
    while True:
        try:
            event = events.get(timeout=max(0.01, until - time.monotonic()))
        except queues.Empty:
            raise TimeoutError("no %s report within %.0f s" % (kind, timeout_s)) from None
        if event[0] == kind:
            return event
        if on_event is not None:
            on_event(event)


def _measure(
    probe: ServerProbe, start_s: float, end_s: float, events, on_event, processes: int
) -> dict:
    """Sample the server over the window while passing ticks on; collect the client results."""
    time.sleep(max(0.0, start_s - time.monotonic()))
    cpu_start = probe.cpu_s()
    rss = [probe.rss_mb()]
    on_event(("phase", "measuring"))
    results: list[dict] = []
    last_cpu, last_s = cpu_start, time.monotonic()
    while time.monotonic() < end_s:
        try:
            event = events.get(timeout=0.2)
        except queues.Empty:
            continue
        if event[0] == "tick" and event[1] == 0:
            cpu, now = probe.cpu_s(), time.monotonic()
            rss.append(probe.rss_mb())
            if cpu is not None and last_cpu is not None:
                on_event(("server", 100 * (cpu - last_cpu) / max(1e-3, now - last_s), rss[-1]))
            last_cpu, last_s = cpu, now
        if event[0] == "result":
            results.append(event[2])
        on_event(event)
    cpu_end = probe.cpu_s()
    rss.append(probe.rss_mb())
    while len(results) < processes:
        results.append(_expect(events, "result", 30, on_event)[2])
    return {
        "results": results,
        "server_cpu_s": None if cpu_start is None or cpu_end is None else cpu_end - cpu_start,
        "rss_mb": [value for value in rss if value is not None],
    }


def _summarise(settings: BenchSettings, kind: str, figures: dict) -> dict[str, Any]:
    results = figures["results"]
    seconds = results[0]["seconds"]
    clients = [client for result in results for client in result["clients"]]
    fps = np.array([client["fps"] for client in clients] or [0.0])
    latencies = (
        np.concatenate(
            [
                np.frombuffer(result["latencies_us"], dtype=np.int64) + result["clock_offset_us"]
                for result in results
            ]
        )
        / 1000
    )
    frames = sum(client["frames"] for client in clients)
    server_cpu_s = figures["server_cpu_s"]
    client_cpu_s = sum(result["cpu_s"] for result in results)
    rss = figures["rss_mb"]
    summary: dict[str, Any] = {
        "server": kind,
        "clients": len(clients),
        "seconds": seconds,
        "source_fps": max(client["published"] for client in clients) / seconds if clients else 0.0,
        "fps_min": float(fps.min()),
        "fps_median": float(np.median(fps)),
        "dropped": sum(client["dropped"] for client in clients),
        "bad_frames": sum(client["bad"] for client in clients),
        "lost": sum(client["lost"] for client in clients) + sum(r["failed"] for r in results),
        "latency_p50_ms": float(np.percentile(latencies, 50)) if len(latencies) else None,
        "latency_p99_ms": float(np.percentile(latencies, 99)) if len(latencies) else None,
        "frames_per_s": frames / seconds,
        "mb_per_s": sum(client["bytes"] for client in clients) / seconds / 1e6,
        "server_cpu_pct": None if server_cpu_s is None else 100 * server_cpu_s / seconds,
        "server_cpu_us_per_frame": (
            None if server_cpu_s is None or not frames else server_cpu_s * 1e6 / frames
        ),
        "client_cpu_pct": 100 * client_cpu_s / seconds,
        "server_rss_mb_start": rss[0] if rss else None,
        "server_rss_mb_end": rss[-1] if rss else None,
        "server_rss_mb_max": max(rss) if rss else None,
        "server_rss_mb_samples": [round(value, 1) for value in rss],  # about one a second
        "clock_rtt_us": min(r["clock_rtt_us"] for r in results),
        "slow": [
            _slow_summary(slow, settings.seconds + WARMUP_S) for r in results for slow in r["slow"]
        ],
    }
    return summary


def _slow_summary(slow: dict, run_s: float) -> dict[str, Any]:
    """A slow client's rate and its lag behind live at the checkpoints its run reached."""
    lags = slow["lags"]
    scale = min(1.0, run_s / 60)
    at: dict[str, float | None] = {}
    for checkpoint in LAG_CHECKPOINTS_S:
        moment = checkpoint * scale
        near = [lag for t, lag in lags if abs(t - moment) <= 1.0]
        at["%.0f" % moment] = float(np.median(near)) / 1000 if near else None
    return {
        "fps": slow["fps"],
        "frames": slow["frames"],
        "lag_s": at,
        "credit": slow["credit"],
        "error": slow["error"],
    }
