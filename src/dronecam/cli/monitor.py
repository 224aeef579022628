"""`dronecam stats`: a live terminal view of one stream, as a client sees it and as the server reports."""

from __future__ import annotations

import asyncio
import time

from rich.console import Console
from rich.live import Live
from rich.table import Table

from ..client import ClientStats, ServerMessage, StreamClient
from ..core.telemetry import Telemetry


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
    rows += telemetry_rows(stats.telemetry)
    for name, value in rows:
        table.add_row(name, value)
    return table


def _value(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern % value


def telemetry_rows(t: Telemetry | None) -> list[tuple[str, str]]:
    """The drone's state at the newest frame's capture (docs/mavlink.md), or why there is none."""
    if t is None:
        return [("telemetry", "none (no flight controller heard)")]
    rows = [("telemetry age", "%d ms" % t.age_ms)]
    if t.lat_deg is not None:
        rows.append(("position", "%.6f, %.6f" % (t.lat_deg, t.lon_deg or 0.0)))
    rows.append(
        (
            "altitude rel / MSL",
            "%s / %s" % (_value(t.alt_rel_m, "%.1f m"), _value(t.alt_msl_m, "%.1f m")),
        )
    )
    rows.append(
        (
            "speed / heading / climb",
            "%s / %s / %s"
            % (
                _value(t.groundspeed_mps, "%.1f m/s"),
                _value(t.heading_deg, "%.0f deg"),
                _value(t.climb_mps, "%+.1f m/s"),
            ),
        )
    )
    if t.roll_deg is not None:
        rows.append(
            (
                "roll / pitch / yaw",
                "%.1f / %.1f / %.1f deg" % (t.roll_deg, t.pitch_deg or 0.0, t.yaw_deg or 0.0),
            )
        )
    if t.battery_v is not None:
        pct = "" if t.battery_pct is None else ", %d %%" % t.battery_pct
        rows.append(("battery", "%.2f V%s" % (t.battery_v, pct)))
    if t.gps_fix is not None:
        rows.append(("GPS", "fix %d, %s satellites" % (t.gps_fix, _value(t.satellites, "%d"))))
    return rows


def summary(stats: ClientStats, seconds: float) -> str:
    """The last line: the fps is the frames received over the whole run, outages included."""
    return "frames %d in %.1f s, fps %.1f, latency p50 %s p99 %s, dropped %d, reconnects %d" % (
        stats.frames,
        seconds,
        stats.frames / seconds if seconds > 0 else 0.0,
        _ms(stats.latency_ms(50)),
        _ms(stats.latency_ms(99)),
        stats.dropped,
        stats.reconnects,
    )


async def run(url: str, duration_s: float | None, window: int | None, console: Console) -> None:
    """Show live figures until Ctrl-C or `duration_s`; print a one-line summary at the end."""
    client = StreamClient(url, window=window, reconnect=True)
    state = "connecting"
    started = time.monotonic()
    deadline = None if duration_s is None else started + duration_s
    with Live(
        render(url, client.stats, state),
        console=console,
        refresh_per_second=4,
        transient=not console.is_terminal,
    ) as live:

        async def consume() -> None:
            nonlocal state
            async for item in client:
                if isinstance(item, ServerMessage):
                    if item.type == "disconnected":
                        state = "reconnecting: %s" % item.data["reason"]
                    elif item.type in ("welcome", "connected"):
                        state = "streaming"

        async def draw() -> None:
            # On a timer, not per frame: during an outage the figures must fall, not freeze.
            while True:
                await asyncio.sleep(0.25)
                live.update(render(url, client.stats, state))

        await client.connect()
        state = "streaming"
        drawer = asyncio.create_task(draw())
        try:
            if deadline is None:
                await consume()
            else:
                await asyncio.wait_for(consume(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            pass
        finally:
            drawer.cancel()
            await client.close()
    console.print(summary(client.stats, time.monotonic() - started), soft_wrap=True)
