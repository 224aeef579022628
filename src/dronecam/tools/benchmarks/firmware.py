"""Memory and speed of the firmware on the MicroPython unix port (BENCHMARKS.md §Firmware).

    python -m dronecam.tools.benchmarks.firmware speed      # per-client fps and latency, 1 and 5 clients
    python -m dronecam.tools.benchmarks.firmware credit     # the same, 5 clients with credit flow (window 2)
    python -m dronecam.tools.benchmarks.firmware alloc      # bytes allocated per frame sent
    python -m dronecam.tools.benchmarks.firmware soak       # heap after warm-up over 10,000 frames, 5 clients
    python -m dronecam.tools.benchmarks.firmware heapsize   # smallest -X heapsize for 5 clients at 30 fps

The host server on the same frames, in the same run, is the baseline for the ratios.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

from ...client import ReceivedFrame, ServerMessage, StreamClient
from ...server import ServerSettings, running_server
from ..firmware import FirmwareError, HostFirmware, build_bundle
from ..media import ListSource, synthetic_jpegs


def host_server(source: ListSource):
    """The host server on the same frames: the baseline for the ratios."""
    return running_server(source, ServerSettings(host="127.0.0.1", port=0))


def frames_folder(root: Path, count: int) -> Path:
    folder = root / ("frames%d" % count)
    if not folder.exists():
        folder.mkdir(parents=True)
        for number, jpeg in enumerate(synthetic_jpegs(count), 1):
            (folder / ("%05d.jpg" % number)).write_bytes(jpeg)
    return folder


async def watch(
    url: str, clients: int, seconds: float, warmup_s: float = 2.0, window: int | None = None
) -> dict:
    """Run `clients` StreamClients (by default no credit window, as the original clients)."""
    heartbeats: list[dict] = []

    async def one(index: int) -> tuple[int, float, list[float]]:
        frames, latencies = 0, []
        async with StreamClient(url, window=window) as client:
            start = time.monotonic()
            measure_from = start + warmup_s
            async for item in client:
                now = time.monotonic()
                if now - start > warmup_s + seconds:
                    break
                if isinstance(item, ServerMessage):
                    if index == 0 and item.type == "heartbeat" and now > measure_from:
                        heartbeats.append(item.data)
                elif isinstance(item, ReceivedFrame) and now > measure_from:
                    frames += 1
                    if item.latency_ms is not None:
                        latencies.append(item.latency_ms)
        return frames, seconds, latencies

    results = await asyncio.gather(*(one(i) for i in range(clients)))
    fps = [frames / span for frames, span, _ in results]
    latencies = sorted(x for _, _, lat in results for x in lat)
    return {
        "fps_min": min(fps),
        "fps_mean": statistics.mean(fps),
        "p50": latencies[len(latencies) // 2] if latencies else float("nan"),
        "p99": latencies[int(len(latencies) * 0.99)] if latencies else float("nan"),
        "heartbeats": heartbeats,
    }


async def firmware(root: Path, frames: Path, heapsize: str | None = None, **overrides):
    fw = HostFirmware(frames, root, heapsize=heapsize, **overrides)
    await fw.start()
    return fw


async def speed(root: Path) -> None:
    frames = frames_folder(root, 30)
    jpegs = [path.read_bytes() for path in sorted(frames.glob("*.jpg"))]
    print("| clients | server | fps per client (min / mean) | latency p50 / p99 (ms) |")
    print("|---|---|---|---|")
    for clients in (1, 5):
        async with host_server(ListSource(jpegs, fps=30)) as host:
            base = await watch(host.url, clients, 10)
        fw = await firmware(root, frames)
        try:
            result = await watch(fw.url, clients, 10)
        finally:
            await fw.stop()
        for name, r in (("host (baseline)", base), ("firmware", result)):
            print(
                "| %d | %s | %.1f / %.1f | %.1f / %.1f |"
                % (clients, name, r["fps_min"], r["fps_mean"], r["p50"], r["p99"])
            )
        print(
            "| %d | ratio firmware / host | %.2f | %.2f / %.2f |"
            % (
                clients,
                result["fps_mean"] / base["fps_mean"],
                result["p50"] / base["p50"],
                result["p99"] / base["p99"],
            )
        )


async def credit(root: Path) -> None:
    """5 clients with credit flow (window 2, the client library's default), one ack a frame."""
    fw = await firmware(root, frames_folder(root, 30))
    try:
        result = await watch(fw.url, 5, 10, window=2)
    finally:
        await fw.stop()
    print(
        "| 5 (window 2) | firmware | %.1f / %.1f | %.1f / %.1f |"
        % (result["fps_min"], result["fps_mean"], result["p50"], result["p99"])
    )


def per_frame_allocation(heartbeats: list[dict]) -> list[float]:
    """Bytes allocated per frame sent, per heartbeat interval (garbage between collections)."""
    values = []
    for previous, current in itertools.pairwise(heartbeats):
        sent = current["frames_sent"] - previous["frames_sent"]
        if sent > 0:
            values.append(current["alloc_bytes"] / sent)
    return values


async def alloc(root: Path) -> None:
    frames = frames_folder(root, 30)
    print(
        "| clients | bytes allocated per frame sent (median, min-max over 1 s intervals) | frames sent per s |"
    )
    print("|---|---|---|")
    for clients in (1, 5):
        fw = await firmware(root, frames)
        try:
            result = await watch(fw.url, clients, 15)
        finally:
            await fw.stop()
        values = per_frame_allocation(result["heartbeats"])
        beats = result["heartbeats"]
        rate = (beats[-1]["frames_sent"] - beats[0]["frames_sent"]) / max(1, len(beats) - 1)
        print(
            "| %d | %.0f (%.0f-%.0f) | %.0f |"
            % (clients, statistics.median(values), min(values), max(values), rate)
        )


async def soak(root: Path, frames_total: int = 10000, fps: int = 100) -> None:
    frames = frames_folder(root, 30)
    fw = await firmware(root, frames, env={"DRONECAM_FPS": str(fps)})
    try:
        # The stand-in camera falls a little short of `fps` under load: run long enough.
        result = await watch(fw.url, 5, 1.2 * frames_total / fps, warmup_s=5)
    finally:
        await fw.stop()
    beats = result["heartbeats"]
    heap = [beat["heap_used"] for beat in beats]
    published = beats[-1]["frames"] - beats[0]["frames"]
    print(
        "frames published during the soak: %d (stand-in camera at %d fps), 5 clients at %.1f fps min"
        % (published, fps, result["fps_min"])
    )
    print(
        "heap used after each heartbeat's collection: first %d, last %d, min %d, max %d bytes"
        % (heap[0], heap[-1], min(heap), max(heap))
    )
    print(
        "bytes allocated per frame sent: median %.0f"
        % statistics.median(per_frame_allocation(beats))
    )


async def passes(root: Path, frames: Path, heapsize: str, **overrides) -> tuple[bool, str]:
    try:
        fw = await firmware(root, frames, heapsize=heapsize, **overrides)
    except FirmwareError as error:
        return False, str(error).splitlines()[-1]
    try:
        result = await watch(fw.url, 5, 8)
    except Exception as error:  # a crash under memory pressure shows up in many ways
        return False, "%s: %s" % (type(error).__name__, error)
    finally:
        await fw.stop()
    # Since issue 13 the firmware survives a MemoryError by dropping or refusing a client
    # ("out of memory" in its log): a heap where that happens with 5 clients is too small.
    failed = "MemoryError" in fw.log() or "out of memory" in fw.log()
    return (result["fps_min"] >= 29.0 and not failed), "fps min %.1f%s" % (
        result["fps_min"],
        ", out of memory" if failed else "",
    )


async def heapsize(root: Path) -> None:
    frames = frames_folder(root, 3)
    store = sum(path.stat().st_size for path in frames.glob("*.jpg"))
    largest = max(path.stat().st_size for path in frames.glob("*.jpg"))
    print(
        "stand-in camera inside the heap: %d bytes of frames + 2 driver buffers of %d bytes"
        % (store, largest)
    )
    for label, overrides in (
        ("defaults (3 slots of MAX_FRAME_SIZE 100000)", {}),
        ("MAX_FRAME_SIZE 32768", {"max_frame_size": 32768}),
    ):
        low, high = 64, 2048  # KiB
        notes = {}
        while high - low > 16:
            middle = (low + high) // 2
            ok, note = await passes(root, frames, "%dk" % middle, **overrides)
            notes[middle] = note
            if ok:
                high = middle
            else:
                low = middle
        ok, note = await passes(root, frames, "%dk" % high, **overrides)
        print(
            "%s: smallest passing heapsize %dk (%s); largest failing %dk (%s)"
            % (label, high, note, low, notes.get(low, "not tried"))
        )


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else "speed"
    root = Path(tempfile.mkdtemp(prefix="dronecam-fw-bench-"))
    build_bundle(root / "bundle")
    run = {"speed": speed, "credit": credit, "alloc": alloc, "soak": soak, "heapsize": heapsize}[
        what
    ]
    asyncio.run(run(root))


if __name__ == "__main__":
    main()
