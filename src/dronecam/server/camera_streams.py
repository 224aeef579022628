"""The streams the MAVLink camera announces: one VIDEO_STREAM_INFORMATION per stream served."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from .listener import StreamServer

# VIDEO_STREAM_TYPE and VIDEO_STREAM_ENCODING
STREAM_RTSP, STREAM_RTPUDP, STREAM_TCP_MPEG, STREAM_MPEG_TS = 0, 1, 2, 3
ENCODING_UNKNOWN, ENCODING_H264 = 0, 1


class VideoStream:
    """One stream the camera announces in VIDEO_STREAM_INFORMATION."""

    def __init__(
        self, name: str, uri: str, kind: int, encoding: int, width: int, height: int, fps: float
    ) -> None:
        self.name = name
        self.uri = uri
        self.kind = kind
        self.encoding = encoding
        self.width = width
        self.height = height
        self.fps = fps


def h264_stream(url: str, host: str, width: int, height: int, fps: float) -> VideoStream | None:
    """How a ground station receives an H.264 sink the server sends to, or None.

    `rtp://GCS:PORT` and `udp://GCS:PORT` (MPEG-TS) are pushed to the ground station, which
    listens: the URI is where it listens (`udp://0.0.0.0:PORT`, as QGroundControl writes it).
    `rtsp://SERVER/PATH` is a media server the camera publishes to: players pull from it, so
    its URL is announced, with a loopback host replaced by the camera's address.
    """
    parts = urlsplit(url)
    if parts.scheme in ("rtp", "udp") and parts.port:
        kind = STREAM_RTPUDP if parts.scheme == "rtp" else STREAM_MPEG_TS
        name = "H.264 RTP" if parts.scheme == "rtp" else "H.264 MPEG-TS"
        uri = "udp://0.0.0.0:%d" % parts.port
        return VideoStream(name, uri, kind, ENCODING_H264, width, height, fps)
    if parts.scheme == "rtsp" and parts.hostname:
        netloc = parts.netloc.split("@")[-1]  # never announce credentials
        if parts.hostname in ("127.0.0.1", "localhost", "::1"):
            netloc = host + ("" if parts.port is None else ":%d" % parts.port)
        uri = "rtsp://%s%s" % (netloc, parts.path)
        return VideoStream("H.264 RTSP", uri, STREAM_RTSP, ENCODING_H264, width, height, fps)
    return None


def announced_streams(server: StreamServer, host: str) -> list[VideoStream]:
    """The streams this server really serves, the ones ground stations play first.

    In order: an output's own `video_streams(host)` if it has one; the H.264 sinks of an
    output with `settings.urls` (rtp://, udp://, rtsp://); MJPEG over HTTP routes; and the
    WebSocket stream, always. MAVLink has no stream type for MJPEG over HTTP or JPEG over
    WebSocket: TCP_MPEG with encoding UNKNOWN is the nearest, and the URI says what it is.
    """
    source = server.feed.source
    width = int(getattr(source, "width", 0) or 0)
    height = int(getattr(source, "height", 0) or 0)
    fps = float(getattr(source, "fps", 0) or 0)
    streams: list[VideoStream] = []
    for output in server.outputs:
        describe = getattr(output, "video_streams", None)
        if describe is not None:
            streams.extend(describe(host))
            continue
        for url in getattr(getattr(output, "settings", None), "urls", ()) or ():
            stream = h264_stream(str(url), host, width, height, fps)
            if stream is not None:
                streams.append(stream)
    for output in server.outputs:
        for path in getattr(output, "routes", {}) or {}:
            if path.endswith((".mjpg", ".mjpeg")):
                uri = "%s://%s:%d%s" % (server.settings.http_scheme, host, server.port, path)
                streams.append(
                    VideoStream("MJPEG", uri, STREAM_TCP_MPEG, ENCODING_UNKNOWN, width, height, fps)
                )
    uri = "%s://%s:%d/ws" % (server.settings.scheme, host, server.port)
    streams.append(
        VideoStream("WebSocket JPEG", uri, STREAM_TCP_MPEG, ENCODING_UNKNOWN, width, height, fps)
    )
    return streams


def local_address() -> str:
    """This machine's address on its default route (no packet is sent), or 127.0.0.1."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 1))
        return str(probe.getsockname()[0])
    except OSError:
        return "127.0.0.1"
    finally:
        probe.close()
