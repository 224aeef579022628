"""The H.264 output (`--h264`) with real players: PyAV over RTP, MPEG-TS and RTSP, GStreamer as
QGroundControl runs it; the hub never waits for the encoder."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import websockets

from dronecam.outputs import h264_sei, h264_sinks
from dronecam.outputs.h264 import H264Output, H264Settings, sdp_text
from dronecam.tools.h264_player import play
from support import ListSource, host_server, seconds, synthetic_jpegs
from support_hardening import MIN_FPS

JPEGS = synthetic_jpegs(30)


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def h264(*urls: str, **options) -> H264Output:
    return H264Output(H264Settings(list(urls), **options), fps=30)


def clock_offset_us(server) -> int:
    """Server clock minus this process's monotonic clock (the player's)."""
    return server.clock.now_us() - time.monotonic_ns() // 1000


def check_reception(reception, server, size=(640, 480)) -> None:
    assert {(p.width, p.height) for p in reception.pictures} == {size}
    assert reception.fps() >= MIN_FPS, reception.fps()
    seqs = [p.seq for p in reception.pictures if p.seq]
    assert len(seqs) >= len(reception.pictures) - 1, "pictures without their SEI tag"
    assert seqs == sorted(seqs) and seqs[-1] <= server.hub.frames_published
    # Capture to decoded on one machine: positive, and not the clock of another process.
    latencies = reception.latencies_ms(clock_offset_us(server))
    assert 0 < min(latencies) and max(latencies) < 2000, (min(latencies), max(latencies))


async def test_mpegts_over_udp_plays_in_pyav_with_the_tags():
    port = free_port()
    url = "udp://127.0.0.1:%d" % port
    async with host_server(ListSource(JPEGS), outputs=[h264(url)]) as server:
        reception = await asyncio.to_thread(play, url, 60)
        check_reception(reception, server)
    assert reception.format_name == "mpegts"


async def test_rtp_plays_from_the_sdp(tmp_path: Path):
    port = free_port()
    url = "rtp://127.0.0.1:%d" % port
    sdp = tmp_path / "drone.sdp"
    sdp.write_text(sdp_text(url))
    async with host_server(ListSource(JPEGS), outputs=[h264(url)]) as server:
        reception = await asyncio.to_thread(play, str(sdp), 60)
        check_reception(reception, server)
    assert reception.format_name == "sdp"


async def test_rtsp_push_reaches_a_listening_rtsp_server():
    # FFmpeg's RTSP demuxer in listen mode stands in for MediaMTX: it takes the ANNOUNCE and
    # RECORD of a publisher, as a media server does (MediaMTX itself is not run here).
    url = "rtsp://127.0.0.1:%d/drone" % free_port(socket.SOCK_STREAM)
    listener = asyncio.create_task(
        asyncio.to_thread(play, url, 60, options={"rtsp_flags": "listen", "listen_timeout": "10"})
    )
    await asyncio.sleep(0.5)  # the listener binds first; the output retries every 2 s anyway
    async with host_server(ListSource(JPEGS), outputs=[h264(url)]) as server:
        reception = await asyncio.wait_for(listener, seconds(30))
        check_reception(reception, server)
    assert reception.format_name == "rtsp"


@pytest.mark.skipif(
    not shutil.which("gst-launch-1.0"), reason="needs GStreamer (make test installs it)"
)
async def test_qgroundcontrol_pipeline_decodes_rtp_on_5600_style_port(tmp_path: Path):
    # QGroundControl's "UDP h.264 video stream" is this GStreamer pipeline (its README):
    # udpsrc caps=application/x-rtp,...,encoding-name=H264 ! rtph264depay ! avdec_h264.
    port = free_port()
    caps = (
        "application/x-rtp, media=(string)video, clock-rate=(int)90000, encoding-name=(string)H264"
    )
    pipeline = (
        'udpsrc port=%d caps="%s" ! rtph264depay ! tee name=t '
        "t. ! queue ! h264parse ! video/x-h264,stream-format=byte-stream ! filesink location=%s "
        "t. ! queue ! avdec_h264 ! videoconvert ! jpegenc ! multifilesink location=%s/%%05d.jpg"
    ) % (port, caps, tmp_path / "stream.h264", tmp_path)
    player = subprocess.Popen(
        ["gst-launch-1.0", "-q", *_split(pipeline)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        await asyncio.sleep(0.5)
        async with host_server(ListSource(JPEGS), outputs=[h264("rtp://127.0.0.1:%d" % port)]):
            await asyncio.sleep(seconds(3))
    finally:
        player.terminate()
        _, errors = player.communicate(timeout=10)
    pictures = sorted(tmp_path.glob("*.jpg"))
    assert len(pictures) >= 2 * MIN_FPS, (len(pictures), errors[-500:])
    import cv2

    assert cv2.imread(str(pictures[-1])).shape == (480, 640, 3)
    # The tags come through QGroundControl's depayloader and parser untouched.
    seqs = [seq for seq, _ in h264_sei.read_tags((tmp_path / "stream.h264").read_bytes())]
    assert len(seqs) >= 2 * MIN_FPS and seqs == sorted(seqs), seqs[:5]


def _split(pipeline: str) -> list[str]:
    import shlex

    return shlex.split(pipeline)


async def test_a_slow_encoder_skips_frames_and_never_slows_the_clients():
    # 1920x1080 at libx264's "medium" preset takes far longer than a frame on this machine.
    output = h264("udp://127.0.0.1:%d" % free_port(), size=(1920, 1080), preset="medium")
    async with host_server(ListSource(JPEGS), outputs=[output]) as server:
        async with websockets.connect(server.url) as ws:
            frames = 0
            started = time.monotonic()
            async with asyncio.timeout(seconds(10)):
                while time.monotonic() - started < 3:
                    if isinstance(await ws.recv(), bytes):
                        frames += 1
            await ws.send("get_stats")
            async with asyncio.timeout(seconds(5)):
                while True:
                    message = await ws.recv()
                    if isinstance(message, str) and '"stats"' in message:
                        stats = json.loads(message)
                        break
    assert frames / 3 >= MIN_FPS, frames
    assert stats["h264_frames"] > 0 and stats["h264_skipped"] > 0, stats
    assert stats["h264_encode_ms"] > 1000 / 30, stats
    assert stats["clients"] == 1  # the encoder is not a client


async def test_stats_report_fps_and_encode_time_and_the_encoder_is_no_client():
    output = h264("udp://127.0.0.1:%d" % free_port())
    async with host_server(ListSource(JPEGS), outputs=[output], max_clients=1) as server:
        async with asyncio.timeout(seconds(10)):
            while output.frames_encoded < 45:
                await asyncio.sleep(0.05)
        status = output.status()
        assert server.hub.clients == 0
        # The one client slot is still free for a viewer.
        async with websockets.connect(server.url) as ws:
            assert '"welcome"' in await asyncio.wait_for(ws.recv(), seconds(5))
            assert isinstance(await asyncio.wait_for(ws.recv(), seconds(5)), bytes)
    assert status["h264_fps"] >= MIN_FPS, status
    assert 0 < status["h264_encode_ms"] < 1000 / 30, status
    assert "h264_error" not in status


async def test_disabled_it_encodes_nothing_and_restarts_on_a_keyframe():
    port = free_port()
    url = "udp://127.0.0.1:%d" % port
    output = h264(url)
    async with host_server(ListSource(JPEGS), outputs=[output]):
        async with asyncio.timeout(seconds(10)):
            while output.frames_encoded < 5:
                await asyncio.sleep(0.05)
        output.set_enabled(False)
        await asyncio.sleep(0.2)
        stopped_at = output.frames_encoded
        await asyncio.sleep(0.5)
        assert output.frames_encoded == stopped_at
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
            receiver.bind(("127.0.0.1", port))
            receiver.setblocking(False)
            output.set_enabled(True)
            loop = asyncio.get_running_loop()
            first = await asyncio.wait_for(loop.sock_recv(receiver, 2048), seconds(5))
        async with asyncio.timeout(seconds(5)):
            while output.frames_encoded < stopped_at + 5:
                await asyncio.sleep(0.05)
    # The first datagram after enabling is a transport-stream packet starting a keyframe
    # (its SPS), so a player can start from it.
    assert first[0] == 0x47 and b"\x00\x00\x00\x01\x67" in first


async def test_a_failing_sink_is_reported_and_the_others_go_on():
    refused = "rtsp://127.0.0.1:%d/nobody" % free_port(socket.SOCK_STREAM)
    working = "udp://127.0.0.1:%d" % free_port()
    output = h264(refused, working)
    async with host_server(ListSource(JPEGS), outputs=[output]) as server:
        reception = await asyncio.to_thread(play, working, 45)
        status = output.status()
        check_reception(reception, server)
        async with websockets.connect(server.url) as ws:
            assert '"welcome"' in await asyncio.wait_for(ws.recv(), seconds(5))
    assert status["h264_error"].startswith(refused + ": ")
    assert "connect call failed" in status["h264_error"].lower()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://x:1", "--h264 takes rtp://HOST:PORT"),
        ("udp://host-only", "needs a host and a port"),
        ("rtsp://media:8554", "needs a path"),
    ],
)
def test_bad_urls_are_refused_with_the_reason(url: str, message: str):
    with pytest.raises(ValueError, match=message):
        H264Settings([url])


def test_sdp_names_the_port_and_the_payload():
    text = sdp_text("rtp://192.168.1.20:5600")
    assert "m=video 5600 RTP/AVP 96\r\n" in text and "a=rtpmap:96 H264/90000\r\n" in text
    assert "c=IN IP4 192.168.1.20\r\n" in text


async def test_an_rtsp_server_that_stops_reading_never_blocks_the_hub():
    # It accepts the publisher, then reads nothing more: FFmpeg's own muxer would block in a
    # write holding the GIL, freezing the server. Here the frames are dropped, bounded.
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for sequence in range(1, 4):
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                0,
            )
            await reader.readexactly(length)
            writer.write(b"RTSP/1.0 200 OK\r\nCSeq: %d\r\nSession: 1234\r\n\r\n" % sequence)
        writer.transport.pause_reading()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:  # the test is over: this stand-in server just ends
            writer.close()

    listening = socket.socket()
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    listening.bind(("127.0.0.1", 0))
    stuck = await asyncio.start_server(answer, sock=listening)
    stuck_url = "rtsp://127.0.0.1:%d/drone" % stuck.sockets[0].getsockname()[1]
    output = h264(stuck_url)
    try:
        async with host_server(ListSource(JPEGS), outputs=[output]) as server:
            async with websockets.connect(server.url) as ws:
                frames = 0
                started = time.monotonic()
                async with asyncio.timeout(seconds(10)):
                    while time.monotonic() - started < 4:
                        if isinstance(await ws.recv(), bytes):
                            frames += 1
            sink = output.sinks[0]
            pending = sink.pending_bytes()
    finally:
        stuck.close()
    assert frames / 4 >= MIN_FPS, frames
    assert output.frames_encoded / 4 >= MIN_FPS, output.frames_encoded
    assert sink.frames_sent > 0 and sink.frames_dropped > 0, (sink.frames_sent, sink.frames_dropped)
    assert pending <= 2 * h264_sinks.MAX_PENDING_BYTES, pending
