"""`dronecam serve`'s outputs beyond /ws: HTTP MJPEG and snapshots, H.264 (docs/mjpeg.md, docs/h264.md)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """The output options of `serve`, all off by default: the server is then WebSocket-only."""
    outputs = parser.add_argument_group("outputs beyond /ws (docs/mjpeg.md, docs/h264.md)")
    outputs.add_argument(
        "--http",
        action="store_true",
        help="also serve HTTP MJPEG at /stream.mjpg and the newest frame at /snapshot.jpg "
        "on the same port (MJPEG clients count in --max-clients; off by default)",
    )
    outputs.add_argument(
        "--h264",
        action="append",
        metavar="URL",
        help="encode once to H.264 and send it to rtp://HOST:PORT (QGroundControl: UDP h.264, "
        "port 5600), udp://HOST:PORT (MPEG-TS) or rtsp://HOST:PORT/PATH (push to a media "
        "server); repeatable, one encoder for all (needs dronecam[av])",
    )
    outputs.add_argument(
        "--h264-encoder",
        default="libx264",
        metavar="NAME",
        help="FFmpeg encoder: libx264 (default, tuned for zero latency) or a hardware one "
        "such as h264_v4l2m2m (Raspberry Pi)",
    )
    outputs.add_argument(
        "--h264-bitrate",
        type=int,
        default=2000,
        metavar="KBPS",
        help="target and peak bitrate, kbit/s (default: 2000)",
    )
    outputs.add_argument(
        "--h264-keyframe-interval",
        type=int,
        default=30,
        metavar="FRAMES",
        help="a keyframe (where a player can join) every FRAMES frames (default: 30)",
    )
    outputs.add_argument(
        "--h264-size",
        metavar="WxH",
        help="scale to this size, even numbers (default: the camera's)",
    )
    outputs.add_argument(
        "--h264-preset",
        default="veryfast",
        help="libx264 preset: ultrafast costs least CPU, slower ones give more picture per "
        "bit (default: veryfast)",
    )
    outputs.add_argument(
        "--h264-sdp",
        metavar="PATH",
        help="write the SDP file players need for the rtp:// URL (VLC, ffplay); an existing "
        "different file is never overwritten",
    )


def make_outputs(args: argparse.Namespace) -> list:
    """The stream outputs the options ask for, not started.

    Raises:
        ValueError: a bad URL or figure, an encoder this PyAV lacks, or no PyAV at all.
    """
    outputs: list = []
    if args.http:
        from ..outputs.mjpeg import MjpegOutput
        from ..outputs.snapshot import SnapshotOutput

        outputs += [MjpegOutput(), SnapshotOutput()]
    if args.h264:
        outputs.append(_h264_output(args))
    elif args.h264_sdp:
        raise ValueError("--h264-sdp needs an rtp:// --h264 URL")
    return outputs


def _h264_output(args: argparse.Namespace):
    from ..outputs.h264 import H264Output, H264Settings, sdp_text

    size = None
    if args.h264_size:
        try:
            width, height = (int(part) for part in args.h264_size.lower().split("x"))
        except ValueError:
            raise ValueError(
                "--h264-size must look like 1280x720, not %r" % args.h264_size
            ) from None
        size = (width, height)
    settings = H264Settings(
        args.h264,
        encoder=args.h264_encoder,
        bitrate_kbps=args.h264_bitrate,
        keyframe_interval=args.h264_keyframe_interval,
        size=size,
        preset=args.h264_preset,
    )
    _check_encoder(args.h264_encoder)
    if args.h264_sdp:
        rtp = [url for url in args.h264 if url.startswith("rtp://")]
        if not rtp:
            raise ValueError("--h264-sdp needs an rtp:// --h264 URL")
        _write_new(Path(args.h264_sdp), sdp_text(rtp[0]))
    return H264Output(settings, fps=args.fps or 30)


def _check_encoder(name: str) -> None:
    try:
        import av
    except ImportError:
        raise ValueError("--h264 needs PyAV: pip install 'dronecam[av]'") from None
    try:
        codec = av.codec.Codec(name, "w")
    except Exception:
        raise ValueError("this PyAV has no encoder %r (try libx264)" % name) from None
    if codec.type != "video" or "264" not in codec.name:
        raise ValueError("%r is not an H.264 encoder (try libx264)" % name)


def _write_new(path: Path, text: str) -> None:
    """Write `text` to `path` unless a different file is there already."""
    if path.exists():
        if path.read_text() == text:
            return
        raise ValueError("%s exists and is not this stream's SDP: not overwritten" % path)
    try:
        path.write_text(text)
    except OSError as error:
        raise ValueError("cannot write %s: %s" % (path, error.strerror or error)) from None
