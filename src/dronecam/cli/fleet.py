"""`dronecam fleet nats://HOST:PORT`: the live cameras of a NATS cluster, as a table that updates."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from .options import positive

COLUMNS = ("camera", "fps", "clients", "state", "frame", "newest frame", "url")


def add_fleet(commands) -> None:
    parser = commands.add_parser(
        "fleet",
        help="the cameras publishing on a NATS cluster, live (needs dronecam[nats])",
        description="List the cameras that publish on NATS (serve --publish) as a table that "
        "updates; a camera that stops leaves at once, one that dies within three heartbeats.",
    )
    parser.add_argument("url", help="NATS server, e.g. nats://ground:4222 (docs/nats.md)")
    parser.add_argument(
        "--duration", type=positive, metavar="S", help="stop after S seconds (default: Ctrl-C)"
    )
    parser.set_defaults(run=_run_fleet)


def rows(fleet) -> list[tuple[str, ...]]:
    """One row per live camera, in COLUMNS' order."""
    table: list[tuple[str, ...]] = []
    for name, status, _ in fleet.live():
        size = "%sx%s" % (status.get("width", "?"), status.get("height", "?"))
        if status.get("frame_bytes"):
            size += " %.0f KB" % (status["frame_bytes"] / 1024)
        age_ms = status.get("frame_age_ms")
        age = "-" if age_ms is None else "%.2f s" % (age_ms / 1000)
        table.append(
            (
                name,
                "%.1f" % float(status.get("fps", 0)),
                "%s/%s" % (status.get("clients", "?"), status.get("max_clients", "?")),
                str(status.get("camera", "?")),
                size,
                age,
                str(status.get("url", "")),
            )
        )
    return table


def render(server: str, fleet):
    from rich.table import Table

    table = Table(title="dronecam fleet on %s" % server, min_width=60)
    for column in COLUMNS:
        table.add_column(column, justify="right" if column in ("fps", "clients") else "left")
    cameras = rows(fleet)
    for row in cameras:
        table.add_row(*row)
    if not cameras:
        table.caption = "no camera publishes yet (serve --publish %s --name NAME)" % server
    return table


async def watch(url: str, duration_s: float | None, console) -> int:
    """Show the table until Ctrl-C or `duration_s`; return how many cameras were live at the end."""
    from rich.live import Live

    from .. import bus

    address = bus.NatsAddress(url)
    client = await bus.connect(address, "dronecam-fleet")
    fleet = bus.Fleet()
    try:
        await fleet.watch(client)
        deadline = None if duration_s is None else time.monotonic() + duration_s
        with Live(render(address.server, fleet), console=console, refresh_per_second=4) as live:
            while deadline is None or time.monotonic() < deadline:
                await asyncio.sleep(0.25)
                live.update(render(address.server, fleet))
        return len(fleet.live())
    finally:
        await client.close()


def _run_fleet(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..bus import BusError

    try:
        asyncio.run(watch(args.url, args.duration, Console()))
    except BusError as error:
        print("dronecam: %s" % error, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
