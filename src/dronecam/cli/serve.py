"""`dronecam serve` and `dronecam viewer`: the server, its access options, the browser page."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from ..core import protocol
from .mavlink import add_mavlink_options, mavlink_settings
from .nats import add_nats_options, make_nats_outputs
from .options import PORT, add_overwrite, frame_size, integer, new_file, positive
from .outputs import add_output_options, make_outputs

VIEWER_MARK = b"<!-- dronecam viewer"
DEFAULT_SEND_BUFFER_BYTES = 32 * 1024


def add_serve(commands) -> None:
    parser = commands.add_parser(
        "serve",
        help="run the stream server (synthetic camera by default)",
        description="Serve the camera at ws://HOST:PORT/ws with the original device's protocol.",
    )
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    parser.add_argument(
        "--port", type=PORT, default=8080, help="TCP port, 0 for any (default: 8080)"
    )
    parser.add_argument(
        "--source",
        default="synthetic:",
        help="camera URI: synthetic: (default), v4l2:/dev/video0, opencv:0, file:PATH, "
        "picamera2:, ws://HOST:PORT/ws (relay), nats://HOST:PORT/NAME (edge); see docs/sources.md",
    )
    parser.add_argument(
        "--max-clients",
        type=integer(1, 10000),
        default=protocol.MAX_CLIENTS,
        help="clients served at once; the next is refused (default: 5)",
    )
    parser.add_argument(
        "--fps",
        type=positive,
        default=None,
        help="frames per second (default: the source's own; 30 for synthetic:)",
    )
    parser.add_argument(
        "--size",
        type=frame_size,
        default=(protocol.DEFAULT_WIDTH, protocol.DEFAULT_HEIGHT),
        help="frame size WIDTHxHEIGHT (default: 640x480)",
    )
    parser.add_argument(
        "--quality",
        type=integer(0, 63),
        default=protocol.DEFAULT_QUALITY,
        help="JPEG quality on the OV2640 scale, 0 best .. 63 worst (default: 12)",
    )
    parser.add_argument(
        "--heartbeat-ms",
        type=integer(100, 2000),
        default=protocol.HEARTBEAT_INTERVAL_MS,
        help="heartbeat interval, 100-2000 ms (default: 1000)",
    )
    parser.add_argument(
        "--stream-timeout-ms",
        type=integer(100, 3_600_000),
        default=protocol.STREAM_TIMEOUT_MS,
        help="close a client that takes no frame this long (default: 5000)",
    )
    parser.add_argument(
        "--max-frame-bytes",
        type=integer(1024, protocol.MAX_FRAME_BYTES_CEILING),
        default=None,
        help="larger frames are dropped and counted (default: from the frame size and "
        "quality, 100000 at 640x480 as on the device; the start-up log says the value)",
    )
    parser.add_argument(
        "--send-buffer",
        type=integer(4096, 16 * 1024 * 1024),
        default=None,
        help="kernel send buffer per client, bytes (default: 32768, more for frames over "
        "640x480: about one large frame, the bound on a slow client's lag)",
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
    add_output_options(parser)
    add_nats_options(parser)
    add_mavlink_options(parser)
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
        type=integer(100, 60_000),
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


def _run_serve(args: argparse.Namespace) -> int:
    from ..core.source import FeedSettings, SourceError
    from ..server import ServerSettings, build_server
    from ..server.mavlink_link import MavlinkLinkError
    from ..sources import SourceSettings, make_source

    width, height = args.size
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
            send_buffer_bytes=args.send_buffer or send_buffer_bytes(width, height, args.quality),
            viewer_html=_viewer_html() if args.viewer else None,
            **_access_settings(args),
        )
        outputs = make_outputs(args) + make_nats_outputs(args, source)
        mavlink = mavlink_settings(args)
    except (SourceError, ValueError) as error:
        print("dronecam: %s" % error, file=sys.stderr)
        return 2
    server = build_server(
        source,
        settings,
        FeedSettings(max_frame_bytes=args.max_frame_bytes, quality=args.quality),
        log=logging.getLogger("dronecam.camera").info,
        outputs=outputs,
        mavlink=mavlink,
    )

    async def serve() -> None:
        await server.feed.open()
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
    except (SourceError, MavlinkLinkError) as error:
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


def add_viewer(commands) -> None:
    parser = commands.add_parser(
        "viewer",
        help="write out or open the browser viewer page",
        description="Write the browser viewer (one self-contained HTML file, works offline "
        "from disk) and optionally open it in the default browser. See docs/viewer.md.",
    )
    parser.add_argument(
        "--out",
        default="dronecam-viewer.html",
        help="where to write the page; - for stdout (default: ./dronecam-viewer.html; an "
        "earlier viewer page there is replaced, any other file only with --overwrite)",
    )
    parser.add_argument("--open", action="store_true", help="open the page in the default browser")
    add_overwrite(parser)
    parser.add_argument(
        "--url",
        help="camera to connect to at once, e.g. ws://192.168.4.1/ws (with --open)",
    )
    parser.set_defaults(run=_run_viewer)


def _run_viewer(args: argparse.Namespace) -> int:
    import webbrowser
    from urllib.parse import quote

    html = _viewer_html()
    if args.out == "-":
        if args.open:
            raise SystemExit("dronecam: --open needs a file; use --out PATH, not -")
        sys.stdout.buffer.write(html)
        return 0
    path = new_file(args.out, args.overwrite, _is_viewer_page).resolve()
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


def send_buffer_bytes(width: int, height: int, quality: int) -> int:
    """The default kernel send buffer: 32 KB at VGA, about one frame's worth for larger frames.

    A buffer much smaller than a frame caps each client's rate: 170 KB frames (2560x1440)
    reach 21 fps through 32 KB on loopback, 30 fps through 128 KB.
    """
    return max(DEFAULT_SEND_BUFFER_BYTES, protocol.frame_bytes_limit(width, height, quality) // 8)


def _is_viewer_page(path: Path) -> bool:
    """An earlier copy of the viewer page: replacing it loses nothing of the user's."""
    try:
        with path.open("rb") as page:
            return VIEWER_MARK in page.read(256)
    except OSError:
        return False


def _viewer_html() -> bytes:
    from importlib.resources import files

    return (files("dronecam") / "viewer.html").read_bytes()
