"""The `dronecam` command: serve, stats, view, snapshot, bench and more (`dronecam --help`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from .core import protocol


def _add_serve(commands) -> None:
    parser = commands.add_parser(
        "serve",
        help="run the stream server (synthetic camera by default)",
        description="Serve the camera at ws://HOST:PORT/ws with the original device's protocol.",
    )
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    parser.add_argument("--port", type=int, default=8080, help="TCP port (default: 8080)")
    parser.add_argument(
        "--source",
        default="synthetic:",
        help="camera URI: synthetic: (default), v4l2:/dev/video0, opencv:0, file:PATH, "
        "picamera2:, ws://HOST:PORT/ws (relay); see docs/sources.md",
    )
    parser.add_argument(
        "--max-clients",
        type=int,
        default=protocol.MAX_CLIENTS,
        help="clients served at once; the next is refused (default: 5)",
    )
    parser.add_argument(
        "--fps",
        type=float,
        default=None,
        help="frames per second (default: the source's own; 30 for synthetic:)",
    )
    parser.add_argument(
        "--size",
        default="%dx%d" % (protocol.DEFAULT_WIDTH, protocol.DEFAULT_HEIGHT),
        help="frame size WIDTHxHEIGHT (default: 640x480)",
    )
    parser.add_argument(
        "--quality",
        type=int,
        default=protocol.DEFAULT_QUALITY,
        help="JPEG quality on the OV2640 scale, 0 best .. 63 worst (default: 12)",
    )
    parser.add_argument(
        "--heartbeat-ms",
        type=int,
        default=protocol.HEARTBEAT_INTERVAL_MS,
        help="heartbeat interval, 100-2000 ms (default: 1000)",
    )
    parser.add_argument(
        "--stream-timeout-ms",
        type=int,
        default=protocol.STREAM_TIMEOUT_MS,
        help="close a client that takes no frame this long (default: 5000)",
    )
    parser.add_argument(
        "--max-frame-bytes",
        type=int,
        default=protocol.MAX_FRAME_SIZE,
        help="larger frames are dropped and counted (default: 100000)",
    )
    parser.add_argument(
        "--send-buffer",
        type=int,
        default=32 * 1024,
        help="kernel send buffer per client, bytes (default: 32768)",
    )
    parser.add_argument(
        "--viewer",
        action="store_true",
        help="also serve the browser viewer at http://HOST:PORT/ (off by default)",
    )
    parser.add_argument("--loop", action="store_true", help="loop file sources")
    parser.add_argument(
        "--uvloop",
        action="store_true",
        help="run on uvloop, a faster event loop (the `fast` extra; see BENCHMARKS.md)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every connection event")
    _add_access(parser)
    parser.set_defaults(run=_run_serve)


def _add_access(parser: argparse.ArgumentParser) -> None:
    """Access control for `serve`: all off by default, as on the original device (docs/security.md)."""
    access = parser.add_argument_group("access control (docs/security.md)")
    access.add_argument(
        "--allow-origin",
        action="append",
        metavar="URL",
        help="accept browsers only from this page origin, e.g. https://ops.example.com "
        "(repeatable; clients that send no Origin, like the Python client, are accepted)",
    )
    access.add_argument(
        "--token",
        default=os.environ.get("DRONECAM_TOKEN"),
        help="require ?token=TOKEN on the WebSocket URL (default: $DRONECAM_TOKEN; never logged)",
    )
    access.add_argument("--certfile", help="TLS certificate (PEM): serve wss:// instead of ws://")
    access.add_argument("--keyfile", help="TLS private key (PEM), if not in the certificate file")
    access.add_argument(
        "--handshake-timeout-ms",
        type=int,
        default=protocol.HANDSHAKE_TIMEOUT_MS,
        help="close a connection that has not finished its handshake by then (default: 5000)",
    )


def _access_settings(args: argparse.Namespace) -> dict:
    """ServerSettings fields from the access options.

    Raises:
        ValueError: a certificate or key that cannot be loaded, or options that do not fit.
    """
    if args.keyfile and not args.certfile:
        raise ValueError("--keyfile needs --certfile")
    if args.token is not None and not args.token:
        raise ValueError("the access token must not be empty")
    context = None
    if args.certfile:
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(args.certfile, args.keyfile)
        except (OSError, ssl.SSLError) as error:
            raise ValueError("cannot load the TLS certificate or key: %s" % error) from None
    return {
        "origins": args.allow_origin,
        "token": args.token,
        "ssl_context": context,
        "handshake_timeout_ms": args.handshake_timeout_ms,
    }


def _parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise SystemExit("dronecam: --size must look like 640x480, not %r" % text) from None
    return width, height


def _run_serve(args: argparse.Namespace) -> int:
    from .core.hub import Hub
    from .core.source import Feed, FeedSettings, SourceError
    from .server import ServerSettings, StreamServer
    from .sources import SourceSettings, make_source

    width, height = _parse_size(args.size)
    try:
        source = make_source(
            args.source, SourceSettings(width, height, args.fps, args.quality, args.loop)
        )
        settings = ServerSettings(
            host=args.host,
            port=args.port,
            max_clients=args.max_clients,
            stream_timeout_ms=args.stream_timeout_ms,
            heartbeat_interval_ms=args.heartbeat_ms,
            send_buffer_bytes=args.send_buffer,
            viewer_html=_viewer_html() if args.viewer else None,
            **_access_settings(args),
        )
    except (SourceError, ValueError) as error:
        print("dronecam: %s" % error, file=sys.stderr)
        return 2
    feed = Feed(
        source,
        Hub(),
        FeedSettings(max_frame_bytes=args.max_frame_bytes),
        log=logging.getLogger("dronecam.camera").info,
    )
    server = StreamServer(feed, settings)

    async def serve() -> None:
        await feed.open()
        await server.serve_forever()

    loop_factory = None
    if args.uvloop:
        try:
            import uvloop
        except ImportError:
            print("dronecam: --uvloop needs uvloop: pip install 'dronecam[fast]'", file=sys.stderr)
            return 2
        loop_factory = uvloop.new_event_loop
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(serve())
    except SourceError as error:
        print("dronecam: %s" % error, file=sys.stderr)
        return 1
    except OSError as error:
        print(
            "dronecam: cannot listen on %s:%d: %s"
            % (args.host, args.port, error.strerror or error),
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def _add_viewer(commands) -> None:
    parser = commands.add_parser(
        "viewer",
        help="write out or open the browser viewer page",
        description="Write the browser viewer (one self-contained HTML file, works offline "
        "from disk) and optionally open it in the default browser. See docs/viewer.md.",
    )
    parser.add_argument(
        "--out",
        default="dronecam-viewer.html",
        help="where to write the page; - for stdout (default: ./dronecam-viewer.html)",
    )
    parser.add_argument("--open", action="store_true", help="open the page in the default browser")
    parser.add_argument(
        "--url",
        help="camera to connect to at once, e.g. ws://192.168.4.1/ws (with --open)",
    )
    parser.set_defaults(run=_run_viewer)


def _run_viewer(args: argparse.Namespace) -> int:
    import webbrowser
    from pathlib import Path
    from urllib.parse import quote

    html = _viewer_html()
    if args.out == "-":
        if args.open:
            raise SystemExit("dronecam: --open needs a file; use --out PATH, not -")
        sys.stdout.buffer.write(html)
        return 0
    path = Path(args.out).resolve()
    try:
        path.write_bytes(html)
    except OSError as error:
        print("dronecam: cannot write %s: %s" % (path, error.strerror or error), file=sys.stderr)
        return 1
    print("dronecam: viewer written to %s" % path)
    if args.open:
        page = path.as_uri() + ("#url=" + quote(args.url, safe=":/") if args.url else "")
        if not webbrowser.open(page):
            print("dronecam: no browser found; open %s yourself" % page, file=sys.stderr)
            return 1
    return 0


def _viewer_html() -> bytes:
    from importlib.resources import files

    return (files("dronecam") / "viewer.html").read_bytes()


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
        type=int,
        default=2,
        help="credit flow: frames in flight, 0 for none as the original clients (default: 2)",
    )


def _add_clients(commands) -> None:
    stats = commands.add_parser(
        "stats",
        help="live figures of a stream in the terminal",
        description="Live fps, latency p50/p99, kB/s, drops and the server's stats.",
    )
    _add_url(stats)
    _add_window(stats)
    stats.add_argument(
        "--duration", type=float, help="stop after this many seconds (default: Ctrl-C)"
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
    snapshot.add_argument("--timeout", type=float, default=5.0, help="seconds to wait (default: 5)")
    snapshot.set_defaults(run=_run_snapshot)


def _run_client(main) -> int:
    from .client import StreamError

    try:
        asyncio.run(main)
    except StreamError as error:
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
    from pathlib import Path

    from .client import snapshot

    async def save() -> None:
        jpeg = await snapshot(args.url, args.timeout)
        Path(args.out).write_bytes(jpeg)
        print("saved %s (%d bytes)" % (args.out, len(jpeg)))

    return _run_client(save())


def _add_firmware(commands) -> None:
    parser = commands.add_parser(
        "firmware",
        help="the ESP32-S3 firmware: run it here under MicroPython, bundle it, deploy it",
        description="The device firmware (MicroPython); see docs/firmware.md.",
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    run = actions.add_parser(
        "run",
        help="run the firmware under the MicroPython unix port with a stand-in camera",
        description="Serve ws://127.0.0.1:PORT/ws from the real firmware code under the "
        "micropython binary; the stand-in camera replays JPEG files.",
    )
    run.add_argument("--port", type=int, default=8080, help="TCP port, 0 for any (default: 8080)")
    run.add_argument("--host", default="127.0.0.1", help="address to listen on")
    run.add_argument(
        "--frames", type=Path, help="folder of .jpg files to replay (default: synthetic frames)"
    )
    run.add_argument("--heapsize", help="MicroPython heap, e.g. 512k or 2M (default: its own)")
    run.add_argument(
        "--max-clients", type=int, default=protocol.MAX_CLIENTS, help="clients served at once"
    )
    run.set_defaults(run=_run_firmware)
    deploy = actions.add_parser(
        "deploy",
        help="precompile with mpy-cross and copy to a board with mpremote",
        description="Install the firmware on a board that runs the camera-enabled MicroPython.",
    )
    deploy.add_argument("--port", required=True, help="the board's serial port, e.g. /dev/ttyACM0")
    deploy.add_argument(
        "--config", type=Path, help="your config.py to install (default: the shipped one)"
    )
    deploy.set_defaults(run=_run_firmware_deploy)
    bundle = actions.add_parser("bundle", help="write the device's files (sources) into a folder")
    bundle.add_argument("out", type=Path, help="folder to write")
    bundle.set_defaults(run=_run_firmware_bundle)


def _run_firmware(args: argparse.Namespace) -> int:
    from . import firmware_host

    try:
        return firmware_host.run(
            args.port, args.frames, args.heapsize, host=args.host, max_clients=args.max_clients
        )
    except firmware_host.FirmwareError as error:
        print("dronecam: %s" % error, file=sys.stderr)
        return 1


def _run_firmware_deploy(args: argparse.Namespace) -> int:
    from . import firmware_host

    try:
        firmware_host.deploy(args.port, args.config)
    except firmware_host.FirmwareError as error:
        print("dronecam: %s" % error, file=sys.stderr)
        return 1
    print(
        "Installed. The board restarts; join WiFi ESP32-S3-Drone-Camera, open ws://192.168.4.1/ws"
    )
    return 0


def _run_firmware_bundle(args: argparse.Namespace) -> int:
    from . import firmware_host

    for path in firmware_host.build_bundle(args.out):
        print(args.out / path)
    return 0


def _add_record(commands) -> None:
    parser = commands.add_parser(
        "record",
        help="record a stream to .mkv/.avi (JPEGs kept) or .mp4 (H.264)",
        description="Record ws://HOST:PORT/ws to a video file until the duration or frame "
        "count is reached, the connection is lost, or Ctrl-C; the file is always left playable.",
    )
    parser.add_argument("url", help="stream URL, e.g. ws://192.168.4.1/ws")
    parser.add_argument("out", help="output file: .mkv, .avi (no re-encoding) or .mp4 (H.264)")
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    parser.add_argument("--frames", type=int, metavar="N", help="stop after N frames")
    parser.set_defaults(run=_run_record)


def _run_record(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from rich.progress import Progress, TextColumn, TimeElapsedColumn

    from .client import StreamError
    from .record import RecordError, record

    columns = [
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.completed} frames"),
        TextColumn("{task.fields[fps]:5.1f} fps"),
        TextColumn("{task.fields[size]}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task(Path(args.out).name, fps=0.0, size="0 KB")
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
                size="%.0f KB" % (recording.bytes_written / 1024),
            )

        try:
            result = asyncio.run(
                record(args.url, Path(args.out), args.duration, args.frames, on_frame)
            )
        except KeyboardInterrupt:
            print("dronecam: interrupted; %s is closed and playable" % args.out, file=sys.stderr)
            return 0
        except (StreamError, RecordError) as error:
            print("dronecam: %s" % error, file=sys.stderr)
            return 1
    print(
        "%s: %d frames, %.1f s of video (%s)"
        % (result.path, result.frames, result.seconds, result.reason)
    )
    return 0 if result.frames else 1


def _add_soak(commands) -> None:
    parser = commands.add_parser(
        "soak",
        help="clients join and leave a server for minutes; its RSS, fds and tasks before/after",
        description="Soak test (docs/security.md): by default starts its own server in a child "
        "process; --url targets a running one (--pid adds its RSS and descriptors).",
    )
    parser.add_argument("--duration", type=float, default=600.0, help="seconds (default: 600)")
    parser.add_argument("--steady", type=int, default=2, help="clients that stay (default: 2)")
    parser.add_argument(
        "--churn", type=int, default=3, help="clients that come and go (default: 3)"
    )
    parser.add_argument("--url", help="soak a running server instead of a child one")
    parser.add_argument(
        "--firmware",
        action="store_true",
        help="soak the firmware under the MicroPython unix port instead (dronecam[firmware])",
    )
    parser.add_argument(
        "--pid", type=int, help="the running server's process id, for its resources"
    )
    parser.add_argument("--source", default="synthetic:", help="the child server's camera")
    parser.add_argument("--size", default="640x480", help="the child server's frame size")
    parser.add_argument("--fps", type=float, default=protocol.DEFAULT_FPS, help="its frame rate")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each sample")
    parser.set_defaults(run=_run_soak)


def _run_soak(args: argparse.Namespace) -> int:
    import json

    from .soak import SoakSettings, run_soak

    server_args = (
        *("--source", args.source, "--size", args.size, "--fps", str(args.fps)),
        *("--max-clients", str(args.steady + args.churn)),
    )
    try:
        settings = SoakSettings(
            args.duration,
            args.steady,
            args.churn,
            args.url,
            args.pid,
            server_args,
            firmware=args.firmware,
        )
    except ValueError as error:
        print("dronecam: %s" % error, file=sys.stderr)
        return 2
    logging.getLogger("websockets").setLevel(logging.WARNING)
    log = (lambda message: print(message, file=sys.stderr)) if args.verbose else (lambda _: None)
    result = asyncio.run(run_soak(settings, log))
    print(json.dumps(result.as_dict(), indent=1) if args.json else result.report())
    return 0 if result.flat() and not result.failures else 1


def _add_bench(commands) -> None:
    parser = commands.add_parser(
        "bench",
        help="benchmark the fan-out against websockets.broadcast and a naive loop",
        description="Start a server (or target --url), run N clients for T seconds, report "
        "fps, drops, latency, throughput, server CPU per frame sent and RSS (docs/bench.md).",
    )
    parser.add_argument("-n", "--clients", type=int, default=5, help="normal clients (default: 5)")
    parser.add_argument(
        "-t", "--seconds", type=float, default=20, help="measured seconds per run (default: 20)"
    )
    parser.add_argument(
        "--processes", type=int, default=1, help="client processes to spread over (default: 1)"
    )
    parser.add_argument(
        "--slow", type=int, default=0, help="extra clients that read 5 frames a second"
    )
    parser.add_argument(
        "--credit",
        nargs="?",
        type=int,
        const=2,
        default=0,
        metavar="WINDOW",
        help="slow clients use credit flow: window WINDOW (default 2), an ack per frame",
    )
    parser.add_argument(
        "--rcvbuf", type=int, default=0, help="slow clients' SO_RCVBUF, bytes (default: kernel's)"
    )
    parser.add_argument(
        "--server",
        default="dronecam",
        help="dronecam, broadcast, naive, a comma list or all (default: dronecam)",
    )
    parser.add_argument("--url", help="bench a running server instead of starting one")
    parser.add_argument("--server-pid", type=int, help="with --url: its pid, for CPU and RSS")
    parser.add_argument(
        "--source",
        default="synthetic:?prerender=60",
        help="the servers' source (default: 60 pre-encoded frames looped, almost free per frame)",
    )
    parser.add_argument(
        "--max-clients", type=int, help="server's client limit (default: clients + slow)"
    )
    parser.add_argument(
        "--send-buffer", type=int, default=32 * 1024, help="dronecam's SO_SNDBUF per client"
    )
    parser.add_argument(
        "--uvloop",
        action="store_true",
        help="run the dronecam server on uvloop (baselines stay on asyncio's loop)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds of every server, for ratios (default: 1)"
    )
    parser.add_argument("--profile", metavar="FILE", help="cProfile the dronecam server to FILE")
    parser.add_argument(
        "--soak",
        type=float,
        nargs="?",
        const=600.0,
        metavar="SECONDS",
        help="instead: the soak test (dronecam soak) with --clients steady clients, "
        "--url/--server-pid and --source (default: 600 s)",
    )
    parser.add_argument(
        "--json", metavar="FILE", help="also write every figure as JSON ('-': stdout)"
    )
    parser.set_defaults(run=_run_bench)


def _run_bench(args: argparse.Namespace) -> int:
    import importlib.util
    import json

    if importlib.util.find_spec("psutil") is None:
        print("dronecam: bench needs psutil: pip install 'dronecam[bench]'", file=sys.stderr)
        return 2
    from rich.console import Console

    from .bench import SERVER_KINDS, BenchSettings, run_bench
    from .bench.report import LiveView, print_report

    if args.soak is not None:
        soak = argparse.Namespace(
            duration=args.soak,
            steady=max(1, args.clients),
            churn=3,
            url=args.url,
            pid=args.server_pid,
            firmware=False,
            source=args.source,
            size="%dx%d" % (protocol.DEFAULT_WIDTH, protocol.DEFAULT_HEIGHT),
            fps=float(protocol.DEFAULT_FPS),
            json=args.json == "-",
            verbose=False,
        )
        return _run_soak(soak)
    servers = SERVER_KINDS if args.server == "all" else tuple(args.server.split(","))
    try:
        settings = BenchSettings(
            clients=args.clients,
            seconds=args.seconds,
            processes=args.processes,
            slow=args.slow,
            credit=args.credit,
            rcvbuf=args.rcvbuf,
            servers=servers,
            url=args.url,
            server_pid=args.server_pid,
            source=args.source,
            max_clients=args.max_clients,
            send_buffer=args.send_buffer,
            uvloop=args.uvloop,
            repeat=args.repeat,
            profile=args.profile,
        )
    except ValueError as error:
        print("dronecam: %s" % error, file=sys.stderr)
        return 2
    console = Console(stderr=args.json == "-")
    console.width = max(console.width, 150)
    with LiveView(console, settings.clients) as view:
        report = run_bench(settings, view.on_event, view.start)
    print_report(console, report)
    if args.json == "-":
        print(json.dumps(report, indent=1))
    elif args.json:
        with open(args.json, "w") as out:
            json.dump(report, out, indent=1)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dronecam",
        description="Live drone-camera video over WebSocket (ws://HOST:PORT/ws).",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    _add_serve(commands)
    _add_clients(commands)
    _add_firmware(commands)
    _add_record(commands)
    _add_viewer(commands)
    _add_soak(commands)
    _add_bench(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(message)s",
    )
    logging.getLogger("dronecam.websocket").setLevel(logging.WARNING)
    return int(args.run(args) or 0)
