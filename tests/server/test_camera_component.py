"""The server as a MAVLink camera: a flight controller and a ground station stand-in (pymavlink)."""

import asyncio
import itertools
import math

import pytest
from PIL import Image
from support_mavlink import GroundStation, drone, flying

from dronecam.client import StreamClient
from dronecam.core.telemetry import read_telemetry
from dronecam.tools.flight import M_PER_DEG_LAT
from support import seconds

CAMERA_INFORMATION, CAMERA_SETTINGS, STORAGE_INFORMATION = 259, 260, 261
CAMERA_CAPTURE_STATUS, VIDEO_STREAM_INFORMATION, VIDEO_STREAM_STATUS = 262, 269, 270
IMAGE_START_CAPTURE, VIDEO_START_CAPTURE, VIDEO_STOP_CAPTURE = 2000, 2500, 2501
SET_CAMERA_MODE, DO_DIGICAM_CONTROL = 530, 203


def metres_apart(lat1, lon1, lat2, lon2) -> float:
    north = (lat1 - lat2) * M_PER_DEG_LAT
    east = (lon1 - lon2) * M_PER_DEG_LAT * math.cos(math.radians(lat1))
    return math.hypot(north, east)


def exif_position(path):
    gps = Image.open(path).getexif().get_ifd(0x8825)

    def degrees(values, ref):
        value = float(values[0]) + float(values[1]) / 60 + float(values[2]) / 3600
        return -value if ref in ("S", "W") else value

    return degrees(gps[2], gps[1]), degrees(gps[4], gps[3]), float(gps[6]), gps


async def test_every_frame_carries_the_state_true_at_its_capture(tmp_path):
    async with drone(tmp_path) as d, flying(d.fc_port) as fc:
        async with StreamClient(d.server.url) as client:
            worst_m, worst_alt, frames = 0.0, 0.0, []
            async for frame in client.frames():
                if frame.telemetry is None:
                    assert not frames, "telemetry must not come and go while the FC talks"
                    continue
                frames.append(frame)
                t = frame.telemetry
                truth = fc.truth(t.time_unix_ms / 1000)
                worst_m = max(
                    worst_m, metres_apart(t.lat_deg, t.lon_deg, truth.lat_deg, truth.lon_deg)
                )
                worst_alt = max(worst_alt, abs(t.alt_rel_m - truth.alt_rel_m))
                assert t.age_ms <= 100 + 50, t.age_ms  # within one telemetry period
                if len(frames) == 60:
                    break
    # 10 m/s at 10 Hz: one period is 1 m; dead reckoning does better than holding the fix.
    assert worst_m < 1.0, worst_m
    assert worst_alt < 0.2, worst_alt
    last = frames[-1].telemetry
    assert last.gps_fix == 3 and last.satellites == 14 and abs(last.battery_v - 16.8) < 0.2
    assert abs(last.groundspeed_mps - 10) < 0.1 and last.roll_deg > 5


async def test_a_ground_station_finds_the_camera_plays_its_stream_and_takes_a_photo(tmp_path):
    async with drone(tmp_path) as d, flying(d.fc_port) as fc:
        gcs = GroundStation(d.gcs_port)
        try:
            heartbeat = await gcs.find_camera()
            assert heartbeat is not None and heartbeat.get_srcSystem() == 1  # the vehicle's id
            ack, info = await gcs.request(CAMERA_INFORMATION)
            assert ack.result == 0 and len(info) == 1
            assert bytes(info[0].vendor_name).rstrip(b"\0") == b"dronecam" and info[0].flags & (
                1 | 2 | 256
            )
            assert (info[0].resolution_h, info[0].resolution_v) == (640, 480)
            for msgid in (CAMERA_SETTINGS, STORAGE_INFORMATION, CAMERA_CAPTURE_STATUS):
                ack, replies = await gcs.request(msgid)
                assert ack.result == 0 and len(replies) == 1, msgid
            ack, streams = await gcs.request(VIDEO_STREAM_INFORMATION, 0)
            assert ack.result == 0 and streams, "at least the WebSocket stream"
            assert streams[-1].uri == d.server.url and streams[-1].count == len(streams)
            ack, status = await gcs.request(VIDEO_STREAM_STATUS, 0)
            assert ack.result == 0 and len(status) == len(streams)
            # Plays what it announces.
            async with StreamClient(streams[-1].uri) as client:
                async for frame in client.frames():
                    assert frame.telemetry is not None
                    break
            gcs.command(SET_CAMERA_MODE, 0, 0)
            assert (await gcs.ack(SET_CAMERA_MODE)).result == 0
            gcs.command(IMAGE_START_CAPTURE, 0, 0, 1, 1)
            assert (await gcs.ack(IMAGE_START_CAPTURE)).result == 0
            captured = await gcs.receive({"CAMERA_IMAGE_CAPTURED"})
            assert captured is not None and captured.capture_result == 1
        finally:
            gcs.close()
    path = d.capture_dir / "IMG_00000.jpg"
    assert captured.file_url.endswith(path.name)
    lat, lon, alt, gps = exif_position(path)
    assert abs(lat - captured.lat / 1e7) < 1e-6 and abs(lon - captured.lon / 1e7) < 1e-6
    assert abs(alt - captured.alt / 1000) < 0.01
    truth = fc.truth(captured.time_utc / 1e6)
    assert metres_apart(lat, lon, truth.lat_deg, truth.lon_deg) < 1.0  # where the drone was
    assert gps[29] and gps[7] and gps[17] is not None  # date, time, image direction
    assert Image.open(path).size == (640, 480)
    assert read_telemetry(path.read_bytes()) is not None  # the dronecam segment stays too


async def test_video_capture_over_mavlink_records_and_stops(tmp_path):
    import av

    async with drone(tmp_path) as d, flying(d.fc_port):
        gcs = GroundStation(d.gcs_port)
        try:
            assert await gcs.find_camera() is not None
            gcs.command(VIDEO_START_CAPTURE, 0, 1)
            assert (await gcs.ack(VIDEO_START_CAPTURE)).result == 0
            status = await gcs.receive({"CAMERA_CAPTURE_STATUS"})
            assert status is not None and status.video_status == 1
            gcs.command(VIDEO_START_CAPTURE, 0, 1)  # already recording
            assert (await gcs.ack(VIDEO_START_CAPTURE)).result == 1  # TEMPORARILY_REJECTED
            await asyncio.sleep(seconds(2))
            gcs.command(VIDEO_STOP_CAPTURE, 0)
            assert (await gcs.ack(VIDEO_STOP_CAPTURE)).result == 0
            status = await gcs.receive({"CAMERA_CAPTURE_STATUS"})
            assert status is not None and status.video_status == 0
            await asyncio.sleep(seconds(0.5))
        finally:
            gcs.close()
    path = d.capture_dir / "VID_00000.mkv"
    with av.open(str(path)) as container:
        times = [float(frame.time) for frame in container.decode(video=0)]
    # 2 s of a 30 fps camera between start and stop; a loaded machine's writer may skip some
    # (newest frame wins), never add any.
    assert 1.7 < times[-1] - times[0] < seconds(2) + 0.8, times[-1] - times[0]
    assert 0.6 * 30 * (times[-1] - times[0]) <= len(times) <= 31 * (times[-1] - times[0]) + 1
    lines = (path.parent / "VID_00000.telemetry.jsonl").read_text().splitlines()
    assert len(lines) == len(times)  # one telemetry line per frame recorded


async def test_commands_get_the_right_result_and_others_components_are_ignored(tmp_path):
    async with drone(tmp_path) as d, flying(d.fc_port):
        gcs = GroundStation(d.gcs_port)
        try:
            assert await gcs.find_camera() is not None
            gcs.command(DO_DIGICAM_CONTROL, 1)
            assert (await gcs.ack(DO_DIGICAM_CONTROL)).result == 3  # UNSUPPORTED
            gcs.command(512, 12345)  # REQUEST_MESSAGE for a message a camera does not send
            assert (await gcs.ack(512)).result == 3
            gcs.command(SET_CAMERA_MODE, 0, 7)
            assert (await gcs.ack(SET_CAMERA_MODE)).result == 2  # DENIED: no such mode
            ignored = d.camera.commands_ignored
            gcs.command(IMAGE_START_CAPTURE, 0, 0, 1, target_component=1)  # the autopilot's
            assert await gcs.ack(IMAGE_START_CAPTURE, timeout_s=1.0) is None
            assert d.camera.commands_ignored == ignored + 1
            assert not (d.capture_dir / "IMG_00000.jpg").exists()
        finally:
            gcs.close()


@pytest.mark.timeout(60)
async def test_a_silent_flight_controller_ages_telemetry_away_and_the_stream_goes_on(tmp_path):
    async with drone(tmp_path, max_age_ms=1000) as d, flying(d.fc_port) as fc:
        async with StreamClient(d.server.url) as client:
            ages, without, fps_frames = [], 0, []
            loop = asyncio.get_running_loop()
            async for frame in client.frames():
                if frame.telemetry is not None and not fc.talking:
                    ages.append(frame.telemetry.age_ms)
                if len(fps_frames) == 30 and fc.talking:
                    fc.silent()
                    silent_at = loop.time()
                if not fc.talking and frame.telemetry is None:
                    without += 1
                fps_frames.append(loop.time())
                if without >= 30:
                    break
    assert ages and ages == sorted(ages) and ages[-1] <= 1000
    gone_after = fps_frames[-30] - silent_at
    assert 0.9 < gone_after < seconds(1.5), gone_after
    span = fps_frames[-1] - fps_frames[30]
    fps = (len(fps_frames) - 31) / span
    assert fps > 25, fps  # the stream never froze while telemetry aged and went


async def test_hostile_mavlink_is_counted_and_changes_nothing(tmp_path):
    async with drone(tmp_path) as d, flying(d.fc_port) as fc:
        flood = socket_to(d.fc_port)
        good = None
        async with StreamClient(d.server.url) as client:
            frames = 0
            async for frame in client.frames():
                frames += 1
                if frames == 10:
                    start = asyncio.get_running_loop().time()
                    for index in range(3000):  # garbage, bad checksums, a hijacked position
                        flood.send(
                            bytes([0xFD, 0x1C, 0, 0, index % 256, 1, 1, 33, 0, 0]) + bytes(30)
                        )
                        flood.send(b"\xfe\x09" + bytes(range(index % 200)))
                    fake = fc.conn.mav.global_position_int_encode(0, 0, 0, 0, 0, 0, 0, 0, 0)
                    fake_bytes = bytearray(fake.pack(fc.conn.mav))
                    fake_bytes[-1] ^= 0xFF
                    flood.send(bytes(fake_bytes))
                if frames > 10 and frame.telemetry is not None:
                    good = frame.telemetry
                if frames == 70:
                    elapsed = asyncio.get_running_loop().time() - start
                    break
        flood.close()
        status = d.camera.status()
    assert status["mavlink_bad"] > 0
    assert good is not None and abs(good.lat_deg - 47.4) < 0.01  # never the forged 0, 0
    assert 60 / elapsed > 25, 60 / elapsed


def socket_to(port: int):
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", port))
    return sock


async def test_telemetry_travels_through_a_relay_untouched(tmp_path):
    from dronecam.sources.relay import RelaySource
    from support import host_server

    async with drone(tmp_path) as d, flying(d.fc_port) as fc:
        async with host_server(RelaySource(d.server.url)) as relay:
            async with StreamClient(relay.url) as client:
                seen = 0
                async for frame in client.frames():
                    if frame.telemetry is None:
                        continue
                    t = frame.telemetry
                    truth = fc.truth(t.time_unix_ms / 1000)
                    assert metres_apart(t.lat_deg, t.lon_deg, truth.lat_deg, truth.lon_deg) < 1.0
                    seen += 1
                    if seen == 10:
                        break


async def test_interval_capture_and_the_old_request_commands(tmp_path):
    async with drone(tmp_path) as d, flying(d.fc_port):
        gcs = GroundStation(d.gcs_port)
        try:
            assert await gcs.find_camera() is not None
            gcs.command(521, 1)  # MAV_CMD_REQUEST_CAMERA_INFORMATION, what older QGC sends
            assert (await gcs.ack(521)).result == 0
            assert await gcs.receive({"CAMERA_INFORMATION"}) is not None
            gcs.command(IMAGE_START_CAPTURE, 0, 0.2, 3)  # three photos, 0.2 s apart
            assert (await gcs.ack(IMAGE_START_CAPTURE)).result == 0
            captured = []
            while len(captured) < 3:
                message = await gcs.receive({"CAMERA_IMAGE_CAPTURED"})
                assert message is not None, "only %d photos" % len(captured)
                captured.append(message)
        finally:
            gcs.close()
    assert [m.image_index for m in captured] == [0, 1, 2]
    assert sorted(p.name for p in d.capture_dir.glob("IMG_*.jpg")) == [
        "IMG_00000.jpg", "IMG_00001.jpg", "IMG_00002.jpg",
    ]  # fmt: skip
    times = [m.time_utc / 1e6 for m in captured]
    assert all(0.15 < b - a < 0.4 for a, b in itertools.pairwise(times)), times


async def test_an_mjpeg_output_is_announced_before_the_websocket_and_plays(tmp_path):
    from dronecam.outputs.mjpeg import MjpegOutput
    from dronecam.tools.http_client import MjpegStream

    async with drone(tmp_path, outputs=[MjpegOutput()]) as d, flying(d.fc_port):
        gcs = GroundStation(d.gcs_port)
        try:
            assert await gcs.find_camera() is not None
            ack, streams = await gcs.request(VIDEO_STREAM_INFORMATION, 0)
        finally:
            gcs.close()
        assert ack.result == 0 and [s.stream_id for s in streams] == [1, 2]
        assert streams[0].uri == "http://127.0.0.1:%d/stream.mjpg" % d.server.port
        assert streams[0].encoding == 0 and streams[1].uri == d.server.url
        stream = await MjpegStream.open(streams[0].uri)
        try:
            jpeg = await asyncio.wait_for(stream.next_jpeg(), seconds(5))
        finally:
            stream.close()
        assert read_telemetry(jpeg) is not None  # the MJPEG output's frames carry it too
