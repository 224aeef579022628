"""`dronecam serve --mavlink`: the server as a MAVLink camera, frames with telemetry (docs/mavlink.md)."""

from __future__ import annotations

import argparse


def add_mavlink_options(parser: argparse.ArgumentParser) -> None:
    """The MAVLink options of `serve`; without --mavlink nothing MAVLink happens."""
    group = parser.add_argument_group("MAVLink camera and telemetry (docs/mavlink.md)")
    group.add_argument(
        "--mavlink",
        action="append",
        metavar="CONNECTION",
        help="a MAVLink link (repeatable): udpin:0.0.0.0:14550, udpout:HOST:PORT, tcp:HOST:PORT "
        "or a serial device and baud, /dev/ttyAMA0,921600; needs dronecam[mavlink]",
    )
    group.add_argument(
        "--mavlink-system-id",
        type=int,
        default=0,
        metavar="ID",
        help="the vehicle's system id to follow and speak as (default: the first autopilot heard)",
    )
    group.add_argument(
        "--mavlink-component-id",
        type=int,
        default=100,
        metavar="ID",
        help="this camera's component id (default: 100, MAV_COMP_ID_CAMERA)",
    )
    group.add_argument(
        "--capture-dir",
        default="captures",
        metavar="DIR",
        help="where photos and recordings taken over MAVLink go (default: ./captures)",
    )
    group.add_argument(
        "--stream-host",
        metavar="HOST",
        help="the address ground stations should use in announced stream URLs "
        "(default: this machine's address on its default route)",
    )
    group.add_argument(
        "--telemetry-max-age-ms",
        type=int,
        default=3000,
        metavar="MS",
        help="frames carry no telemetry older than this (default: 3000)",
    )


def mavlink_settings(args: argparse.Namespace):
    """MavlinkSettings from the options, or None without --mavlink.

    Raises:
        ValueError: ids out of range.
    """
    if not args.mavlink:
        return None
    from ..server.camera_component import MavlinkSettings

    if not 100 <= args.telemetry_max_age_ms <= 60000:
        raise ValueError("--telemetry-max-age-ms must be from 100 to 60000")
    return MavlinkSettings(
        args.mavlink,
        system_id=args.mavlink_system_id,
        component_id=args.mavlink_component_id,
        capture_dir=args.capture_dir,
        stream_host=args.stream_host,
        max_age_ms=args.telemetry_max_age_ms,
    )
