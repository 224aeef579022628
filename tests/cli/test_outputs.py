"""`dronecam serve`'s output options (cli/outputs.py), in a real child process."""

import asyncio
import signal

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
