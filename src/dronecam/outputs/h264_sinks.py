"""Where the H.264 output sends its stream: RTP or MPEG-TS over UDP, RTSP push (docs/h264.md).

FFmpeg's muxers (through PyAV) only packetize, into memory, in the encoder's thread: PyAV
holds the GIL while a muxer does network I/O, so a muxer writing to a slow RTSP server would
freeze the whole server. The datagrams and interleaved packets go out here, on the event
loop, without ever blocking: a destination that cannot take a frame now loses that frame and
restarts from the next keyframe, like a slow client skipping to the newest frame.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from fractions import Fraction
from urllib.parse import urlsplit

log = logging.getLogger("dronecam.h264")

TIME_BASE = Fraction(1, 90000)  # RTP's and MPEG-TS's video clock
RTP_PAYLOAD_TYPE = 96
RTP_PACKET_BYTES = 1200  # fits any path's MTU, with room for tunnels
TS_DATAGRAM_BYTES = 1316  # 7 transport-stream packets
MAX_PENDING_BYTES = 256 * 1024  # what a destination may have waiting before frames are dropped
KERNEL_SEND_BUFFER_BYTES = 64 * 1024
RETRY_S = 2.0
RTSP_TIMEOUT_S = 5.0
SCHEMES = ("rtp", "udp", "rtsp")


def check_sink_url(url: str) -> None:
    """Raises ValueError unless `url` is rtp://HOST:PORT, udp://HOST:PORT or rtsp://HOST[:PORT]/PATH."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ValueError(
            "--h264 takes rtp://HOST:PORT, udp://HOST:PORT or rtsp://HOST:PORT/PATH, not %r" % url
        )
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or (port is None and parts.scheme != "rtsp"):
        raise ValueError(
            "--h264 %s needs a host and a port, e.g. %s://192.168.1.10:5600" % (url, parts.scheme)
        )
    if parts.scheme == "rtsp" and parts.path in ("", "/"):
        raise ValueError("--h264 %s needs a path, e.g. rtsp://HOST:8554/drone" % url)


def sdp_text(url: str, control: bool = False) -> str:
    """The SDP of the stream sent to `url`: what VLC, ffplay or PyAV need to play an rtp:// sink
    (and, with `control`, what an RTSP push announces)."""
    parts = urlsplit(url)
    host = parts.hostname or "0.0.0.0"
    port = parts.port if parts.scheme == "rtp" and parts.port else 0
    text = (
        "v=0\r\n"
        "o=- 0 0 IN IP4 %(host)s\r\n"
        "s=dronecam\r\n"
        "c=IN IP4 %(host)s\r\n"
        "t=0 0\r\n"
        "m=video %(port)d RTP/AVP %(pt)d\r\n"
        "a=rtpmap:%(pt)d H264/90000\r\n"
        "a=fmtp:%(pt)d packetization-mode=1\r\n"
    ) % {"host": host, "port": port, "pt": RTP_PAYLOAD_TYPE}
    return text + ("a=control:streamid=0\r\n" if control else "")


class Packetizer:
    """FFmpeg's RTP or MPEG-TS muxer writing into memory: access units in, datagrams out.

    Used only in the encoder's thread.
    """

    def __init__(self, kind: str, width: int, height: int, fps: float) -> None:
        import av

        self.datagrams: list[bytes] = []
        rtp = kind == "rtp"
        self.container = av.open(
            self,
            "w",
            format="rtp" if rtp else "mpegts",
            # flush_packets: a frame's last datagram leaves with it, not with the next frame.
            container_options={
                "packetsize": str(RTP_PACKET_BYTES if rtp else TS_DATAGRAM_BYTES),
                "flush_packets": "1",
            },
            buffer_size=RTP_PACKET_BYTES + 100 if rtp else TS_DATAGRAM_BYTES,
        )
        self.stream = self.container.add_mux_stream(
            "h264", rate=Fraction(fps).limit_denominator(1001), width=width, height=height
        )
        self.stream.time_base = TIME_BASE

    def write(self, data: bytes) -> int:
        """The muxer's output: each flush is one RTP packet, or up to 7 TS packets."""
        self.datagrams.append(bytes(data))
        return len(data)

    def packetize(self, access_unit: bytes, pts: int, keyframe: bool) -> list[bytes]:
        import av

        packet = av.Packet(access_unit)
        packet.pts = packet.dts = pts
        packet.time_base = TIME_BASE
        packet.is_keyframe = keyframe
        packet.stream = self.stream
        self.container.mux(packet)
        datagrams, self.datagrams = self.datagrams, []
        return datagrams

    def close(self) -> None:
        try:
            self.container.close()
        except Exception as error:  # closing only flushes memory; nothing to lose
            log.debug("[H264] closing a packetizer: %s", error)


class Sink:
    """One destination on the event loop: sends a frame's datagrams or drops the frame."""

    kind = "rtp"

    def __init__(self, url: str) -> None:
        self.url = url
        self.error = ""
        self.frames_sent = 0
        self.frames_dropped = 0
        self.needs_keyframe = True

    async def start(self) -> None:
        """Get ready to send; failures are reported in `error`, never raised."""

    async def stop(self) -> None:
        """Release the socket; bounded in time."""

    def ready(self) -> bool:
        return False

    def pending_bytes(self) -> int:
        return 0

    def wants_keyframe(self) -> bool:
        """Ready, drained, and waiting for a keyframe to (re)join the stream."""
        return (
            self.needs_keyframe and self.ready() and self.pending_bytes() <= MAX_PENDING_BYTES // 4
        )

    def _send(self, datagrams: list[bytes]) -> None:
        raise NotImplementedError

    def send(self, datagrams: list[bytes], keyframe: bool) -> None:
        """Send one frame, or drop it: not ready, behind, or waiting for a keyframe to join."""
        if not self.ready() or self.pending_bytes() > MAX_PENDING_BYTES:
            self.needs_keyframe = True
            self.frames_dropped += 1
            return
        if self.needs_keyframe and not keyframe:
            self.frames_dropped += 1
            return
        self.needs_keyframe = False
        try:
            self._send(datagrams)
        except OSError as error:
            self.failed(error)
            return
        self.frames_sent += 1
        if self.error:
            log.info("[H264] sending to %s again", self.url)
            self.error = ""

    def failed(self, error: BaseException) -> None:
        message = str(error) or type(error).__name__
        if message != self.error:
            log.warning("[H264] cannot send to %s: %s", self.url, message)
        self.error = message
        self.needs_keyframe = True


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, sink: UdpSink) -> None:
        self.sink = sink

    def error_received(self, exc: Exception) -> None:
        self.sink.failed(exc)


class UdpSink(Sink):
    """RTP (`rtp://`, RTCP to the next port) or MPEG-TS (`udp://`) datagrams to HOST:PORT."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        parts = urlsplit(url)
        self.kind = "rtp" if parts.scheme == "rtp" else "mpegts"
        self.host = parts.hostname or ""
        self.port = parts.port or 0
        self.transport: asyncio.DatagramTransport | None = None
        self._address: tuple | None = None
        self._rtcp_address: tuple | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            found = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)
            family, _, _, _, address = found[0]
            self.transport, _ = await loop.create_datagram_endpoint(
                lambda: _Datagrams(self), family=family
            )
        except OSError as error:
            self.failed(error)
            return
        self._address = address
        self._rtcp_address = (address[0], self.port + 1, *address[2:])

    async def stop(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def ready(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def pending_bytes(self) -> int:
        if self.transport is None:
            return 0
        # Datagrams the kernel refused (EAGAIN) wait in the transport, unbounded: we look.
        return int(self.transport.get_write_buffer_size())  # type: ignore[attr-defined]

    def _send(self, datagrams: list[bytes]) -> None:
        assert self.transport is not None
        for datagram in datagrams:
            rtcp = self.kind == "rtp" and 200 <= datagram[1] <= 204
            self.transport.sendto(datagram, self._rtcp_address if rtcp else self._address)


class RtspSink(Sink):
    """An RTSP publisher (ANNOUNCE, SETUP over TCP interleaved, RECORD), reconnecting."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        parts = urlsplit(url)
        self.host = parts.hostname or ""
        self.port = parts.port or 554
        self.writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._sequence = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._close()

    def ready(self) -> bool:
        return self.writer is not None and not self.writer.is_closing()

    def pending_bytes(self) -> int:
        return self.writer.transport.get_write_buffer_size() if self.writer else 0

    def _send(self, datagrams: list[bytes]) -> None:
        assert self.writer is not None
        frames = []
        for datagram in datagrams:
            channel = 1 if 200 <= datagram[1] <= 204 else 0  # RTCP on the odd channel
            frames.append(struct.pack(">cBH", b"$", channel, len(datagram)) + datagram)
        self.writer.write(b"".join(frames))

    async def _run(self) -> None:
        while True:
            try:
                reader = await asyncio.wait_for(self._publish(), RTSP_TIMEOUT_S)
                log.info("[H264] publishing to %s", self.url)
                while await reader.read(65536):  # RTCP reports, keep-alive answers: not needed
                    pass
                raise ConnectionError("the RTSP server closed the connection")
            except asyncio.CancelledError:
                raise
            except (TimeoutError, OSError, ConnectionError, ValueError) as error:
                self.failed(error if str(error) else ConnectionError("no answer"))
            self._close()
            await asyncio.sleep(RETRY_S)

    async def _publish(self) -> asyncio.StreamReader:
        reader, self.writer = await asyncio.open_connection(self.host, self.port)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:  # what waits in the kernel is latency too: keep it to a few frames
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, KERNEL_SEND_BUFFER_BYTES)
        sdp = sdp_text(self.url, control=True).encode()
        await self._request(
            reader, "ANNOUNCE", self.url, [("Content-Type", "application/sdp")], sdp
        )
        transport = "RTP/AVP/TCP;unicast;interleaved=0-1;mode=record"
        headers = await self._request(
            reader, "SETUP", self.url.rstrip("/") + "/streamid=0", [("Transport", transport)]
        )
        session = headers.get("session", "").split(";")[0]
        await self._request(
            reader, "RECORD", self.url, [("Session", session), ("Range", "npt=0.000-")]
        )
        self.needs_keyframe = True
        return reader

    async def _request(
        self,
        reader: asyncio.StreamReader,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes = b"",
    ) -> dict[str, str]:
        assert self.writer is not None
        self._sequence += 1
        lines = ["%s %s RTSP/1.0" % (method, url), "CSeq: %d" % self._sequence]
        lines += ["User-Agent: dronecam"] + ["%s: %s" % pair for pair in headers]
        if body:
            lines.append("Content-Length: %d" % len(body))
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        status_line = (await reader.readline()).decode("iso-8859-1").strip()
        answer: dict[str, str] = {}
        while line := (await reader.readline()).decode("iso-8859-1").strip():
            name, _, value = line.partition(":")
            answer[name.strip().lower()] = value.strip()
        if "content-length" in answer:
            await reader.readexactly(int(answer["content-length"]))
        words = status_line.split(" ", 2)
        if len(words) < 2 or not words[0].startswith("RTSP/") or words[1] != "200":
            raise ConnectionError("%s answered %r" % (method, status_line or "nothing"))
        return answer

    def _close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def make_sink(url: str) -> Sink:
    return RtspSink(url) if urlsplit(url).scheme == "rtsp" else UdpSink(url)
