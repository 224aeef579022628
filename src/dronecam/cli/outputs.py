"""`dronecam serve`'s outputs beyond /ws: HTTP MJPEG and snapshots (docs/mjpeg.md)."""

from __future__ import annotations

import argparse


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """The output options of `serve`, all off by default: the server is then WebSocket-only."""
    outputs = parser.add_argument_group("outputs beyond /ws (docs/mjpeg.md)")
    outputs.add_argument(
        "--http",
        action="store_true",
        help="also serve HTTP MJPEG at /stream.mjpg and the newest frame at /snapshot.jpg "
        "on the same port (MJPEG clients count in --max-clients; off by default)",
    )


def make_outputs(args: argparse.Namespace) -> list:
    """The stream outputs the options ask for, not started."""
    outputs: list = []
    if args.http:
        from ..outputs.mjpeg import MjpegOutput
        from ..outputs.snapshot import SnapshotOutput

        outputs += [MjpegOutput(), SnapshotOutput()]
    return outputs
