"""`dronecam stats`, `view`, `snapshot` and `record`: commands built on the client library."""

from __future__ import annotations

import argparse
import asyncio
import sys

from ..core import protocol
from .options import add_overwrite, integer, new_file, positive, require


def _add_url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "url",
        nargs="?",
        default="ws://192.168.4.1/ws",
        help="stream URL (default: the drone, ws://192.168.4.1/ws)",
    )


def _add_window(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--window",
        type=integer(0, protocol.MAX_WINDOW),
        default=2,
        help="credit flow: frames in flight, 0 for none as the original clients (default: 2)",
    )


def add_clients(commands) -> None:
    stats = commands.add_parser(
        "stats",
        help="live figures of a stream in the terminal",
        description="Live fps, latency p50/p99, kB/s, drops and the server's stats.",
    )
    _add_url(stats)
    _add_window(stats)
    stats.add_argument(
        "--duration", type=positive, help="stop after this many seconds (default: Ctrl-C)"
    )
    stats.set_defaults(run=_run_stats)

    view = commands.add_parser(
        "view",
        help="watch a stream in a window (needs dronecam[view])",
        description="Show the stream in an OpenCV window; q or Esc quits.",
    )
    _add_url(view)
    _add_window(view)
    view.set_defaults(run=_run_view)

    snapshot = commands.add_parser(
        "snapshot",
        help="save one frame as a JPEG",
        description="Save the next frame of the stream as a JPEG file.",
    )
    _add_url(snapshot)
    snapshot.add_argument("out", help="output file, e.g. out.jpg")
    snapshot.add_argument(
        "--timeout", type=positive, default=5.0, help="seconds to wait (default: 5)"
    )
    add_overwrite(snapshot)
    snapshot.set_defaults(run=_run_snapshot)


def _run_client(main) -> int:
    from ..bus import BusError
    from ..client import StreamError

    try:
        asyncio.run(main)
    except (StreamError, BusError) as error:
        print("dronecam: %s" % error, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def _run_stats(args: argparse.Namespace) -> int:
    from rich.console import Console

    from . import monitor

    return _run_client(monitor.run(args.url, args.duration, args.window or None, Console()))


def _run_view(args: argparse.Namespace) -> int:
    from . import window

    return _run_client(window.run(args.url, args.window or None))


def _run_snapshot(args: argparse.Namespace) -> int:
    from ..client import snapshot
    from ..core.exif import geotag
    from ..core.telemetry import read_telemetry

    out = new_file(args.out, args.overwrite)

    async def save() -> None:
        if _is_nats(args.url):  # asked of the camera's publisher: no stream joined
            from .. import bus

            jpeg = await bus.snapshot(bus.NatsAddress(args.url), args.timeout)
        else:
            jpeg = await snapshot(args.url, args.timeout)
        telemetry = read_telemetry(jpeg)
        where = ""
        if telemetry is not None and telemetry.lat_deg is not None:
            jpeg = geotag(jpeg, telemetry)  # EXIF GPS: where the drone was at this frame
            where = ", geotagged %.6f, %.6f" % (telemetry.lat_deg, telemetry.lon_deg or 0.0)
        # "x": a file that appeared meanwhile is not replaced either.
        mode = "wb" if args.overwrite or out.exists() else "xb"
        try:
            with out.open(mode) as file:
                file.write(jpeg)
        except OSError as error:
            raise SystemExit(
                "dronecam: cannot write %s: %s" % (out, error.strerror or error)
            ) from None
        print("saved %s (%d bytes%s)" % (out, len(jpeg), where))

    return _run_client(save())


def _is_nats(url: str) -> bool:
    return url.startswith(("nats://", "tls://"))


def add_record(commands) -> None:
    parser = commands.add_parser(
        "record",
        help="record a stream to .mkv/.avi (JPEGs kept) or .mp4 (H.264)",
        description="Record ws://HOST:PORT/ws to a video file until the duration or frame "
        "count is reached, or Ctrl-C; a lost link is reconnected and the recording goes on in "
        "the same file, the gap kept as it happened. The file is always left playable, and an "
        "existing one is never replaced without --overwrite.",
    )
    parser.add_argument(
        "url",
        help="stream URL, e.g. ws://192.168.4.1/ws, or a camera on NATS: nats://HOST:PORT/NAME",
    )
    parser.add_argument("out", help="output file: .mkv, .avi (no re-encoding) or .mp4 (H.264)")
    parser.add_argument("--duration", type=positive, metavar="S", help="stop after S seconds")
    parser.add_argument("--frames", type=integer(1), metavar="N", help="stop after N frames")
    parser.add_argument(
        "--since",
        type=positive,
        default=0,
        metavar="S",
        help="with nats://HOST:PORT/NAME: begin S seconds ago, from the camera's --replay "
        "(docs/nats.md), then go on live",
    )
    parser.add_argument(
        "--no-reconnect",
        dest="reconnect",
        action="store_false",
        help="stop at the first lost connection instead of reconnecting",
    )
    add_overwrite(parser)
    parser.set_defaults(run=_run_record)


def _run_record(args: argparse.Namespace) -> int:
    import time

    require("av", "av", "recording")
    from rich.progress import Progress, TextColumn, TimeElapsedColumn

    from ..bus import BusError
    from ..client import StreamError
    from ..record import RecordError, file_size, record, record_nats

    out = new_file(args.out, args.overwrite)

    if args.since and not _is_nats(args.url):
        print("dronecam: --since needs a camera on NATS: nats://HOST:PORT/NAME", file=sys.stderr)
        return 2
    columns = [
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.completed} frames"),
        TextColumn("{task.fields[fps]:5.1f} fps"),
        TextColumn("{task.fields[size]}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task(out.name, fps=0.0, size=file_size(0))
        first = [0.0]

        def on_frame(recording) -> None:
            now = time.monotonic()
            if recording.frames == 1:
                first[0] = now
            elapsed = now - first[0]
            fps = (recording.frames - 1) / elapsed if elapsed > 0 else 0.0
            progress.update(
                task,
                completed=recording.frames,
                fps=fps,
                size=file_size(recording.bytes_written),
            )

        def on_event(message: str) -> None:
            progress.console.print("dronecam: %s" % message, style="yellow")

        try:
            if _is_nats(args.url):
                job = record_nats(
                    args.url,
                    out,
                    args.since,
                    args.duration,
                    args.frames,
                    on_frame,
                    overwrite=args.overwrite,
                )
            else:
                job = record(
                    args.url,
                    out,
                    args.duration,
                    args.frames,
                    on_frame,
                    overwrite=args.overwrite,
                    reconnect=args.reconnect,
                    on_event=on_event,
                )
            result = asyncio.run(job)
        except KeyboardInterrupt:
            print("dronecam: interrupted; %s is closed and playable" % args.out, file=sys.stderr)
            return 0
        except (StreamError, RecordError, BusError) as error:
            print("dronecam: %s" % error, file=sys.stderr)
            return 1
    gaps = "; %d gaps, %.1f s in all" % (len(result.gaps), sum(g for _, g in result.gaps))
    print(
        "%s: %d frames, %.1f s of video, %s%s (%s)"
        % (
            result.path,
            result.frames,
            result.seconds,
            file_size(result.path.stat().st_size if result.frames else 0),
            gaps if result.gaps else "",
            result.reason,
        )
    )
    return 0 if result.frames else 1
