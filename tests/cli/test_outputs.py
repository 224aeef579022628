"""`dronecam serve`'s output options (cli/outputs.py), in a real child process."""

import asyncio
import signal

from cli_support import dronecam

from dronecam.core import protocol
from dronecam.tools.http_client import MjpegStream, http_get
from support import free_port, seconds, start_dronecam


async def test_serve_http_from_the_command_line():
    port = free_port()
    process = await start_dronecam(
        "serve",
        "--http",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        base = "http://127.0.0.1:%d" % port
        expected = "HTTP outputs: %s/snapshot.jpg, %s/stream.mjpg" % (base, base)
        async with asyncio.timeout(seconds(20)):
            while expected not in (line := (await process.stderr.readline()).decode()):
                assert line, "the server ended before listening"
            snapshot = await http_get(base + "/snapshot.jpg")
            while snapshot.status == 503:  # the camera's first frame is still on its way
                await asyncio.sleep(0.05)
                snapshot = await http_get(base + "/snapshot.jpg")
        stream = await MjpegStream.open(base + "/stream.mjpg")
        jpeg = await asyncio.wait_for(stream.next_jpeg(), seconds(5))
        stream.close()
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), seconds(10))
    assert snapshot.status == 200 and protocol.read_tag(snapshot.body)
    assert protocol.read_tag(jpeg)
    assert process.returncode == 0


async def test_bad_h264_options_get_one_line(tmp_path):
    for args, message in [
        (["--h264", "http://x:1"], "--h264 takes rtp://HOST:PORT"),
        (["--h264", "udp://x:1", "--h264-encoder", "nope"], "this PyAV has no encoder 'nope'"),
        (["--h264", "udp://x:1", "--h264-size", "big"], "--h264-size must look like 1280x720"),
        (
            ["--h264", "udp://x:1", "--h264-sdp", str(tmp_path / "a.sdp")],
            "--h264-sdp needs an rtp://",
        ),
        (["--h264-sdp", str(tmp_path / "a.sdp")], "--h264-sdp needs an rtp://"),
    ]:
        code, output = await dronecam("serve", *args)
        assert code == 2, (args, output)
        assert output.strip() == "dronecam: " + output.strip().removeprefix("dronecam: ")
        assert message in output and "Traceback" not in output, output
        assert len(output.strip().splitlines()) == 1, output


async def test_h264_sdp_is_written_and_a_different_file_is_never_overwritten(tmp_path):
    sdp = tmp_path / "drone.sdp"
    sdp.write_text("my own notes\n")
    code, output = await dronecam("serve", "--h264", "rtp://127.0.0.1:5600", "--h264-sdp", str(sdp))
    assert code == 2 and "exists and is not this stream's SDP: not overwritten" in output
    assert sdp.read_text() == "my own notes\n"
