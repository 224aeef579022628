"""`dronecam serve`'s NATS options (--publish, --replay, the edge's default camera): docs/nats.md."""

from __future__ import annotations

import argparse


def add_nats_options(parser: argparse.ArgumentParser) -> None:
    """Publishing on a NATS cluster, and the replay kept there (docs/nats.md; the `nats` extra)."""
    nats = parser.add_argument_group("NATS: past one machine (docs/nats.md)")
    nats.add_argument(
        "--publish",
        metavar="NATS_URL",
        help="also publish every frame and the status on NATS, e.g. nats://ground:4222 "
        "(credentials in the URL or $NATS_USER/$NATS_PASSWORD, $NATS_TOKEN, $NATS_CREDS)",
    )
    nats.add_argument(
        "--name",
        help="this camera's name on NATS: letters, digits, - and _ (needed with --publish)",
    )
    nats.add_argument(
        "--replay",
        type=float,
        default=0,
        metavar="S",
        help="keep the last S seconds in a JetStream stream for record --since (default: off)",
    )
    nats.add_argument(
        "--replay-bytes",
        type=int,
        default=256 * 1024 * 1024,
        metavar="N",
        help="and at most N bytes of it (default: 256 MiB)",
    )
    nats.add_argument(
        "--replay-storage",
        choices=("memory", "file"),
        default="memory",
        help="where the NATS server keeps the replay (default: memory)",
    )
    nats.add_argument(
        "--default-camera",
        metavar="NAME",
        help="with --source nats://HOST:PORT/*: the camera plain /ws serves (default: the first)",
    )


def make_nats_outputs(args: argparse.Namespace, source=None) -> list:
    """The NATS publisher that --publish asks for, if any; --default-camera given to `source`.

    Raises:
        ValueError: options that do not fit, or a bad NATS URL.
    """
    if args.default_camera:
        if not getattr(source, "serves_every_camera", False):
            raise ValueError("--default-camera goes with --source nats://HOST:PORT/*")
        from ..bus import BusError, check_name

        try:
            source.default_camera = check_name(args.default_camera)
        except BusError as error:
            raise ValueError(str(error)) from None
    if not args.publish:
        if args.name or args.replay:
            raise ValueError("--name and --replay go with --publish nats://HOST:PORT")
        return []
    from ..bus import BusError, NatsAddress, import_nats
    from ..outputs.nats import NatsPublisher, PublisherSettings

    if not args.name:
        raise ValueError("--publish needs --name NAME: the camera's name on NATS")
    try:
        import_nats()
        address = NatsAddress(args.publish)
        if address.camera:
            raise BusError("--publish takes nats://HOST:PORT; the camera's name goes in --name")
        settings = PublisherSettings(
            address,
            args.name,
            heartbeat_ms=args.heartbeat_ms,
            replay_s=args.replay,
            replay_bytes=args.replay_bytes,
            replay_storage=args.replay_storage,
        )
    except BusError as error:
        raise ValueError(str(error)) from None
    return [NatsPublisher(settings)]
