"""The `dronecam` command: serve, stats, view, snapshot, record, viewer, firmware, soak, bench.

Each module here adds its commands to the parser; heavy imports stay inside each command's run
function, so `dronecam --help` is quick and optional extras are needed only when used.
"""

from __future__ import annotations

import argparse
import logging

from . import clients, fleet, serve, tools
from .options import Parser


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="dronecam",
        description="Live drone-camera video over WebSocket (ws://HOST:PORT/ws).",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    serve.add_serve(commands)
    clients.add_clients(commands)
    tools.add_firmware(commands)
    clients.add_record(commands)
    serve.add_viewer(commands)
    tools.add_soak(commands)
    tools.add_bench(commands)
    fleet.add_fleet(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(message)s",
    )
    logging.getLogger("dronecam.websocket").setLevel(logging.WARNING)
    return int(args.run(args) or 0)
