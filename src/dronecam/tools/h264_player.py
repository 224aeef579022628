"""A PyAV player for the H.264 output: decodes what a ground station would, reads the SEI tags.

Blocking (PyAV): run it in a thread. Each decoded picture gets the tag of the packet with
its timestamp (RTP hands over one NAL unit per packet, MPEG-TS one access unit), and is
stamped with the local monotonic clock when it comes out of the decoder: with the server's clock offset,
that gives glass-to-glass latency (capture at the server to a decoded picture here).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..outputs import h264_sei

# FFmpeg's demuxers buffer for reordering and probing by default: a player tuned for live.
LIVE_OPTIONS = {"fflags": "nobuffer", "max_delay": "0", "reorder_queue_size": "0"}


@dataclass
class Picture:
    seq: int
    capture_us: int
    decoded_us: int
    width: int
    height: int


@dataclass
class Reception:
    pictures: list[Picture] = field(default_factory=list)
    format_name: str = ""

    def fps(self, skip: int = 10) -> float:
        """Decoded pictures per second, after the first `skip` (start-up bursts)."""
        timed = self.pictures[skip:]
        if len(timed) < 2:
            return 0.0
        return (len(timed) - 1) * 1e6 / (timed[-1].decoded_us - timed[0].decoded_us)

    def latencies_ms(self, offset_us: int) -> list[float]:
        """Capture to decoded, for tagged pictures; `offset_us` = server clock - local clock."""
        return [
            (picture.decoded_us + offset_us - picture.capture_us) / 1000
            for picture in self.pictures
            if picture.seq
        ]


def play(
    url: str,
    pictures: int,
    *,
    format: str | None = None,
    options: dict[str, str] | None = None,
    timeout_s: float = 10,
) -> Reception:
    """Decode `pictures` pictures from `url` (udp://, an .sdp file, rtsp:// with listen...)."""
    import av

    reception = Reception()
    merged = {**LIVE_OPTIONS, **(options or {})}
    if url.endswith(".sdp"):
        format = format or "sdp"
        merged.setdefault("protocol_whitelist", "file,udp,rtp")
    with av.open(url, format=format, options=merged, timeout=timeout_s) as container:
        reception.format_name = container.format.name
        # Frame threads make the decoder hold pictures back (a frame per thread): a ground
        # station decodes with slice threads or none, for latency.
        decoder = container.streams.video[0].codec_context
        decoder.thread_type = "SLICE"
        decoder.flags |= av.codec.context.Flags.low_delay
        tags: dict[int | None, tuple[int, int]] = {}
        for packet in container.demux(video=0):
            tag = h264_sei.read_tag(bytes(packet)) if packet.size else None
            if tag is not None:
                tags[packet.pts] = tag
            for frame in packet.decode():
                decoded_us = time.monotonic_ns() // 1000
                seq, capture_us = tags.pop(frame.pts, (0, 0))
                reception.pictures.append(
                    Picture(seq, capture_us, decoded_us, frame.width, frame.height)
                )
                if len(reception.pictures) >= pictures:
                    return reception
            if len(tags) > 64:  # tags of pictures the decoder never returned
                tags.clear()
    return reception
    return reception
