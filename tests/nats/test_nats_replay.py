"""Instant replay from JetStream, and snapshots asked of the publisher."""

import asyncio
import subprocess
import sys
import time

import av
import pytest

from dronecam import bus
from dronecam.core.protocol import read_tag, strip_tags
from dronecam.record import record_nats
from dronecam.tools.natsd import running_nats
from support import seconds, synthetic_jpegs
from support_nats import origin, publisher_of

JPEGS = synthetic_jpegs(4)


def _frames_in(path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


async def test_record_since_writes_the_seconds_already_flown_then_goes_on_live(
    nats_server, tmp_path
):
    out = tmp_path / "replay.mkv"
    async with origin(nats_server.url, replay_s=10, jpegs=JPEGS) as camera:
        await asyncio.sleep(0.5)
        assert publisher_of(camera).status()["nats_replay"] == "10s"
        await asyncio.sleep(seconds(2.5))
        started = time.monotonic()
        result = await record_nats(nats_server.url + "/cam1", out, since_s=2, duration_s=1.5)
        elapsed = time.monotonic() - started
    # 2 s from the replay, then 1.5 s live: about 3.5 s of video at 30 fps.
    print(
        "record --since 2 --duration 1.5: %d frames, %.2f s of video"
        % (result.frames, result.seconds)
    )
    assert 2.8 <= result.seconds <= 4.0
    assert result.frames >= 80
    assert elapsed < 3
    assert _frames_in(out) == result.frames


async def test_record_since_of_a_camera_without_replay_is_a_clear_answer(nats_server, tmp_path):
    async with origin(nats_server.url, name="live-only"):
        with pytest.raises(bus.BusError, match=r"no replay of camera 'live-only'.*--replay"):
            await record_nats(nats_server.url + "/live-only", tmp_path / "x.mkv", since_s=30)
        command = [sys.executable, "-m", "dronecam", "record", nats_server.url + "/live-only"]
        command += [str(tmp_path / "y.mkv"), "--since", "30"]
        result = await asyncio.to_thread(
            subprocess.run, command, capture_output=True, text=True, timeout=seconds(30)
        )
    assert result.returncode == 1
    assert result.stderr.strip().startswith("dronecam: no replay of camera 'live-only'")
    assert "Traceback" not in result.stderr


async def test_a_snapshot_is_the_newest_frame_without_joining_the_stream(nats_server, tmp_path):
    address = bus.NatsAddress(nats_server.url + "/cam1")
    async with origin(nats_server.url, jpegs=JPEGS) as camera:
        await asyncio.sleep(0.3)
        jpeg = await bus.snapshot(address)
        assert strip_tags(jpeg) in JPEGS
        seq, _ = read_tag(jpeg)
        assert abs(camera.hub.frames_published - seq) <= 3  # the newest, not the first
        assert camera.hub.clients == 0
        out = tmp_path / "snap.jpg"
        command = [sys.executable, "-m", "dronecam", "snapshot", address.shown, str(out)]
        result = await asyncio.to_thread(
            subprocess.run, command, capture_output=True, text=True, timeout=seconds(30)
        )
        assert result.returncode == 0, result.stderr
        assert strip_tags(out.read_bytes()) in JPEGS
    with pytest.raises(bus.BusError, match="no camera 'cam1'"):
        await bus.snapshot(address)


async def test_replay_on_a_nats_server_without_jetstream_is_said_and_refused_clearly(tmp_path):
    with running_nats() as plain:  # no -js
        async with origin(plain.url, replay_s=10) as camera:
            await asyncio.sleep(0.5)
            assert publisher_of(camera).status()["nats_replay"] == "unavailable"
            with pytest.raises(bus.BusError, match="without JetStream"):
                await record_nats(plain.url + "/cam1", tmp_path / "x.mkv", since_s=5)
            async with origin(plain.url, name="live"):  # live recording needs no JetStream
                result = await record_nats(plain.url + "/live", tmp_path / "y.mkv", max_frames=10)
            assert result.frames == 10
