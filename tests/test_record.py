"""Recordings read back with PyAV and checked frame by frame."""

import asyncio
import itertools
import re
import signal
import time
from pathlib import Path

import av
import pytest

from dronecam.client import StreamError
from dronecam.core.protocol import tag_jpeg
from dronecam.record import RecordError, Recording, file_size, record
from support import ListSource, host_server, seconds, start_dronecam, synthetic_jpegs

JPEGS = synthetic_jpegs(6)


def _read_back(path: Path) -> tuple[list[bytes], list[int], int]:
    """(packets, timestamps in microseconds, frames that decode) of the file's video stream."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = [p for p in container.demux(stream) if p.size]
        data = [bytes(p) for p in packets]
        times_us = [round(p.pts * p.time_base * 1_000_000) for p in packets]
    with av.open(str(path)) as container:
        decoded = sum(1 for _ in container.decode(video=0))
    return data, times_us, decoded


def _in_stream_order(packets: list[bytes]) -> bool:
    """Each packet is one of the source's JPEGs, in the order the source sent them."""
    indexes = [JPEGS.index(p) for p in packets]
    return all((b - a) % len(JPEGS) >= 1 for a, b in itertools.pairwise(indexes))


@pytest.mark.parametrize(("suffix", "tick_us"), [(".mkv", 1000), (".avi", 1000)])
def test_remux_keeps_jpeg_bytes_and_each_capture_time(tmp_path, suffix, tick_us):
    capture_us = [5_000_000, 5_033_000, 5_070_000, 5_200_000, 5_201_000, 5_900_000]
    recording = Recording(tmp_path / ("vfr" + suffix))
    for seq, (jpeg, time_us) in enumerate(zip(JPEGS, capture_us, strict=True), 1):
        recording.write(bytes(tag_jpeg(jpeg, seq, time_us)), time_us)
    recording.close()
    packets, times_us, decoded = _read_back(recording.path)
    assert packets == JPEGS  # the tags are gone, every other byte is the camera's
    assert times_us == [t - capture_us[0] for t in capture_us]
    assert decoded == len(JPEGS)


def test_mp4_is_h264_at_each_capture_time(tmp_path):
    capture_us = [0, 40_000, 80_000, 200_000, 240_000, 500_000]
    recording = Recording(tmp_path / "flight.mp4")
    for jpeg, time_us in zip(JPEGS, capture_us, strict=True):
        recording.write(jpeg, time_us)
    recording.close()
    with av.open(str(recording.path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = list(container.decode(stream))
    assert [round(f.time * 1_000_000) for f in frames] == capture_us
    assert (frames[0].width, frames[0].height) == (640, 480)


def test_only_known_containers(tmp_path):
    with pytest.raises(RecordError, match=r"\.mkv, \.avi"):
        Recording(tmp_path / "flight.gif")


async def test_record_stops_at_the_frame_count(tmp_path):
    async with host_server(ListSource(JPEGS, fps=60)) as server:
        result = await asyncio.wait_for(
            record(server.url, tmp_path / "ten.mkv", max_frames=10), seconds(10)
        )
    assert (result.frames, result.reason) == (10, "10 frames recorded")
    packets, times_us, decoded = _read_back(tmp_path / "ten.mkv")
    assert len(packets) == decoded == 10
    assert _in_stream_order(packets)
    assert times_us[0] == 0 and times_us == sorted(set(times_us))


async def test_a_lost_connection_leaves_a_playable_file(tmp_path):
    out = tmp_path / "lost.mkv"
    async with host_server(ListSource(JPEGS, fps=60)) as server:
        written = asyncio.Event()

        def on_frame(recording):
            if recording.frames == 8:
                written.set()

        task = asyncio.create_task(record(server.url, out, on_frame=on_frame, reconnect=False))
        await asyncio.wait_for(written.wait(), seconds(10))
    result = await asyncio.wait_for(task, seconds(10))
    assert result.reason == "the server closed the stream"
    packets, _, decoded = _read_back(out)
    assert len(packets) == decoded == result.frames >= 8
    assert _in_stream_order(packets)


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
async def test_cancelling_a_recording_closes_the_file_cleanly(tmp_path, suffix):
    out = tmp_path / ("cancelled" + suffix)
    async with host_server(ListSource(JPEGS, fps=60)) as server:
        frames = asyncio.Queue()
        task = asyncio.create_task(record(server.url, out, on_frame=frames.put_nowait))
        for _ in range(12):
            recording = await asyncio.wait_for(frames.get(), seconds(10))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    _, _, decoded = _read_back(out)
    assert decoded == recording.frames >= 12


async def test_an_unreachable_url_fails_before_any_file_is_made(tmp_path):
    with pytest.raises(StreamError, match="cannot reach"):
        await record("ws://127.0.0.1:9/ws", tmp_path / "never.mkv")
    assert not (tmp_path / "never.mkv").exists()


async def _dronecam(*args: str) -> asyncio.subprocess.Process:
    return await start_dronecam(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )


async def test_record_command_with_frames_then_ctrl_c(tmp_path):
    async with host_server(ListSource(JPEGS, fps=30)) as server:
        counted = await _dronecam("record", server.url, str(tmp_path / "five.avi"), "--frames", "5")
        out, err = await asyncio.wait_for(counted.communicate(), seconds(30))
        assert counted.returncode == 0, err.decode()
        assert b"5 frames" in out
        interrupted = await _dronecam("record", server.url, str(tmp_path / "ctrl-c.mp4"))

        async def started() -> None:
            while not (tmp_path / "ctrl-c.mp4").exists():
                await asyncio.sleep(0.05)

        await asyncio.wait_for(started(), seconds(30))
        await asyncio.sleep(0.5)
        interrupted.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(interrupted.communicate(), seconds(30))
        assert b"closed and playable" in err
    assert _read_back(tmp_path / "five.avi")[2] == 5
    assert _read_back(tmp_path / "ctrl-c.mp4")[2] > 0


async def test_the_python_example_in_the_docs_runs(tmp_path, monkeypatch):
    text = (Path(__file__).resolve().parents[1] / "docs" / "recording.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "record(" in b]
    monkeypatch.chdir(tmp_path)
    async with host_server(ListSource(JPEGS, fps=30)) as server:
        code = block.replace("ws://127.0.0.1:8080/ws", server.url)
        namespace: dict = {}
        exec(code.replace("asyncio.run(main())", ""), namespace)
        await asyncio.wait_for(namespace["main"](), seconds(15))
    assert _read_back(tmp_path / "clip.mkv")[2] > 10


def test_422_jpegs_from_a_yuyv_camera_remux_as_they_are(tmp_path):
    import numpy as np

    from dronecam.sources.jpeg import encode_yuyv

    frames = [
        encode_yuyv(np.full(320 * 240 * 2, level, np.uint8), 320, 240, 12)
        for level in (60, 120, 180)
    ]
    recording = Recording(tmp_path / "yuyv.mkv")
    for index, jpeg in enumerate(frames):
        recording.write(jpeg, index * 33_000)
    recording.close()
    packets, _, decoded = _read_back(recording.path)
    assert packets == frames and decoded == 3
    with av.open(str(recording.path)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuvj422p"


def _other_jpegs(count: int) -> list[bytes]:
    """JPEGs that differ from JPEGS: what the restarted server's camera sends."""
    from dronecam.sources.synthetic import SyntheticCamera

    camera = SyntheticCamera()
    return [camera.render(number) for number in range(5000, 5000 + count)]


async def _sent_to_one_client(server, count: int) -> None:
    async with asyncio.timeout(seconds(20)):
        while not server.hub.subscriptions or server.hub.subscriptions[0].frames_sent < count:
            await asyncio.sleep(0.02)


async def test_record_goes_on_across_a_server_restart_with_the_gap_in_the_file(tmp_path):
    # The link drops mid-flight: the recording reconnects and goes on in the same file, and
    # the outage is in the file as long as it was (capture times on the recorder's clock).
    out = tmp_path / "flight.mkv"
    after = _other_jpegs(6)
    async with host_server(ListSource(JPEGS, fps=30)) as first:
        port = first.port
        recorder = await _dronecam("record", first.url, str(out), "--frames", "60")
        await _sent_to_one_client(first, 20)
    stopped = time.monotonic()
    await asyncio.sleep(1.5)
    async with host_server(ListSource(after, fps=30), port=port):
        restarted = time.monotonic()
        output, err = await asyncio.wait_for(recorder.communicate(), seconds(30))
    assert recorder.returncode == 0, err.decode()
    text = output.decode()
    assert "link lost at" in text and "reconnecting" in text
    gap_said = float(re.search(r"link back: ([0-9.]+) s gap", text).group(1))
    assert "60 frames" in text and "1 gaps" in text

    packets, times_us, decoded = _read_back(out)
    assert len(packets) == decoded == 60
    sides = ["before" if p in JPEGS else "after" if p in after else "?" for p in packets]
    cut = sides.index("after")
    assert sides == ["before"] * cut + ["after"] * (60 - cut) and cut >= 20
    gap_s = (times_us[cut] - times_us[cut - 1]) / 1e6
    outage_s = restarted - stopped
    # At least the time the server was down; at most that plus one reconnect backoff (2 s).
    assert outage_s - 0.1 < gap_s < outage_s + seconds(2.5), (gap_s, outage_s)
    assert abs(gap_s - gap_said) < 0.1
    steps_us = [b - a for a, b in itertools.pairwise(times_us)]
    longest = sorted(range(len(steps_us)), key=steps_us.__getitem__)[-2:]
    # The outage is the one long step: frames skipped under load make shorter ones at most.
    assert longest[-1] == cut - 1 and steps_us[longest[0]] < steps_us[cut - 1] / 2, steps_us
    print("record: %.2f s gap in the file for %.2f s of outage" % (gap_s, outage_s))


async def test_no_reconnect_stops_at_a_lost_link_and_says_it_once(tmp_path):
    out = tmp_path / "lost.mkv"
    async with host_server(ListSource(JPEGS, fps=60)) as server:
        task = asyncio.create_task(record(server.url, out, reconnect=False))
        await _sent_to_one_client(server, 8)
        for connection in list(server.connections):  # the link dies: no close frame
            connection.transport.abort()
        result = await asyncio.wait_for(task, seconds(10))
    assert result.reason.startswith("the connection was lost (no close from the server")
    assert "connection lost: connection lost" not in result.reason
    assert _read_back(out)[2] == result.frames >= 8


async def test_a_recording_never_replaces_a_file(tmp_path):
    out = tmp_path / "flight.mkv"
    out.write_bytes(b"last week's flight")
    async with host_server(ListSource(JPEGS, fps=60)) as server:
        with pytest.raises(RecordError, match="exists; add --overwrite"):
            await record(server.url, out, max_frames=3)
        assert out.read_bytes() == b"last week's flight"
        result = await record(server.url, out, max_frames=3, overwrite=True)
    assert result.frames == 3 and _read_back(out)[2] == 3


def test_sizes_are_shown_in_decimal_units_of_the_bytes_written(tmp_path):
    assert [file_size(n) for n in (0, 999_400, 1_230_000, 2_050_000_000)] == [
        "0 kB",
        "999 kB",
        "1.23 MB",
        "2.05 GB",
    ]
    recording = Recording(tmp_path / "count.mkv")
    for index, jpeg in enumerate(JPEGS * 10):
        recording.write(jpeg, index * 33_000)
    # What is muxed counts, not what the muxer has flushed to the file so far.
    assert recording.bytes_written == sum(len(jpeg) for jpeg in JPEGS * 10)
    recording.close()
    assert (tmp_path / "count.mkv").stat().st_size >= recording.bytes_written
