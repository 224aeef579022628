"""`dronecam stats`: a live terminal view of one stream, as a client sees it and as the server reports."""

from __future__ import annotations

import asyncio
import time

from rich.console import Console
from rich.live import Live
from rich.table import Table

from ..client import ClientStats, ReceivedFrame, ServerMessage, StreamClient


def _ms(value: float | None) -> str:
    return "-" if value is None else "%.1f ms" % value


def render(url: str, stats: ClientStats, state: str) -> Table:
    """The table `dronecam stats` shows, refreshed a few times a second."""
    table = Table(title="dronecam %s  [%s]" % (url, state), show_header=False, min_width=48)
    table.add_column("figure", style="bold")
    table.add_column("value", justify="right")
    server = stats.server
    rows = [
        ("fps (received)", "%.1f" % stats.fps),
        ("latency p50 / p99", "%s / %s" % (_ms(stats.latency_ms(50)), _ms(stats.latency_ms(99)))),
        ("throughput", "%.0f kB/s" % stats.kbytes_per_s),
        ("frames / dropped", "%d / %d" % (stats.frames, stats.dropped)),
        ("reconnects", str(stats.reconnects)),
        ("server fps", str(server.get("fps", "-"))),
        (
            "server clients",
            "%s of %s" % (server.get("clients", "-"), server.get("max_clients", "?")),
        ),
        ("camera", str(server.get("camera", "-"))),
        ("server frames", str(server.get("frames", "-"))),
    ]
    if server.get("camera_error"):
        rows.append(("camera error", str(server["camera_error"])))
    for name, value in rows:
        table.add_row(name, value)
    return table


def summary(stats: ClientStats) -> str:
    return "frames %d, fps %.1f, latency p50 %s p99 %s, dropped %d, reconnects %d" % (
        stats.frames,
        stats.fps,
        _ms(stats.latency_ms(50)),
        _ms(stats.latency_ms(99)),
        stats.dropped,
        stats.reconnects,
    )


async def run(url: str, duration_s: float | None, window: int | None, console: Console) -> None:
    """Show live figures until Ctrl-C or `duration_s`; print a one-line summary at the end."""
    client = StreamClient(url, window=window, reconnect=True)
    state = "connecting"
    deadline = None if duration_s is None else time.monotonic() + duration_s
    with Live(
        render(url, client.stats, state),
        console=console,
        refresh_per_second=4,
        transient=not console.is_terminal,
    ) as live:
        last_draw = 0.0

        async def consume() -> None:
            nonlocal state, last_draw
            async for item in client:
                if isinstance(item, ServerMessage):
                    if item.type == "disconnected":
                        state = "reconnecting: %s" % item.data["reason"]
                    elif item.type in ("welcome", "connected"):
                        state = "streaming"
                elif isinstance(item, ReceivedFrame) and time.monotonic() - last_draw > 0.25:
                    last_draw = time.monotonic()
                    live.update(render(url, client.stats, state))

        try:
            await client.connect()
            state = "streaming"
            if deadline is None:
                await consume()
            else:
                await asyncio.wait_for(consume(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            pass
        finally:
            await client.close()
    console.print(summary(client.stats))
