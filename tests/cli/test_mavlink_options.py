"""`dronecam serve --mavlink` (cli/mavlink.py) from the command line, in a real child process."""

import asyncio
import signal

from cli_support import dronecam
from support_mavlink import GroundStation, free_udp_port

from dronecam.client import StreamClient
from support import free_port, seconds, start_dronecam


async def test_serve_help_shows_the_mavlink_options():
    code, output = await dronecam("serve", "--help")
    assert code == 0 and "--mavlink CONNECTION" in output and "udpin:0.0.0.0:14550" in output


async def test_a_link_that_cannot_open_is_one_line_and_exit_1():
    code, output = await dronecam("serve", "--port", "0", "--mavlink", "/dev/no-such-tty,57600")
    assert code == 1, output
    assert "cannot open MAVLink connection /dev/no-such-tty,57600" in output
    assert "Traceback" not in output


async def test_bad_ids_are_refused_before_starting():
    code, output = await dronecam(
        "serve", "--mavlink", "udpin:127.0.0.1:1", "--mavlink-system-id", "300"
    )
    assert code == 2 and "system id" in output and "Traceback" not in output


async def test_serve_mavlink_is_a_camera_a_ground_station_finds(tmp_path):
    port = free_port()
    link = free_udp_port()
    process = await start_dronecam(
        "serve", "--host", "127.0.0.1", "--port", str(port),
        "--mavlink", "udpin:127.0.0.1:%d" % link, "--capture-dir", str(tmp_path),
        "--stream-host", "127.0.0.1",
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    gcs = GroundStation(link)
    try:
        assert process.stderr is not None
        async with asyncio.timeout(seconds(20)):
            while "WebSocket endpoint" not in (await process.stderr.readline()).decode():
                pass
        heartbeat = await gcs.find_camera()
        assert heartbeat is not None and heartbeat.type == 30  # MAV_TYPE_CAMERA
        ack, streams = await gcs.request(269, 0)
        assert ack.result == 0 and streams[-1].uri == "ws://127.0.0.1:%d/ws" % port
        async with StreamClient(streams[-1].uri) as client:
            async for frame in client.frames():
                assert frame.telemetry is None  # no flight controller on this link
                break
    finally:
        gcs.close()
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), seconds(10))
    assert process.returncode == 0
