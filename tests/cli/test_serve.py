"""`dronecam serve` (cli/serve.py) as a user runs it: bad options get a one-line answer, an HD
camera streams, the welcome says the real rate."""

import asyncio
import signal
import time

import pytest
import simplejpeg
from cli_support import dronecam

from dronecam.client import ServerMessage, StreamClient
from dronecam.core import protocol
from support import free_port, seconds, start_dronecam


async def test_serve_rejects_bad_options():
    code, output = await dronecam("serve", "--size", "big")
    assert code != 0 and "--size: must look like 640x480" in output
    code, output = await dronecam("serve", "--source", "nonsense:")
    assert code == 2 and "unknown source" in output


async def _serve(*args: str):
    """`dronecam serve ARGS` on a free port: (process, its URL, the start-up log so far)."""
    port = free_port()
    process = await start_dronecam(
        "serve", "--host", "127.0.0.1", "--port", str(port), *args, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    log = []
    async with asyncio.timeout(seconds(30)):
        while "WebSocket endpoint" not in (line := (await process.stderr.readline()).decode()):
            assert line, "the server ended before listening: %s" % "".join(log)
            log.append(line)
    return process, "ws://127.0.0.1:%d/ws" % port, log


async def _stop(process) -> None:
    process.send_signal(signal.SIGINT)
    await asyncio.wait_for(process.wait(), seconds(10))


async def test_an_hd_camera_streams_with_a_frame_limit_for_its_size():
    # 2560x1440 at quality 5: JPEGs of about 170 KB, past the device's 100 KB limit.
    process, url, _ = await _serve(
        "--size", "2560x1440", "--quality", "5", "--source", "synthetic:?prerender=20"
    )
    try:
        async with StreamClient(url) as client:
            frames = client.frames()
            first = await asyncio.wait_for(anext(frames), seconds(30))
            started, sizes = time.monotonic(), []
            while time.monotonic() - started < 3:
                sizes.append(len((await asyncio.wait_for(anext(frames), seconds(5))).jpeg))
            fps = len(sizes) / (time.monotonic() - started)
            heartbeat = client.stats.server  # the last heartbeat's fields
    finally:
        await _stop(process)
        log = (await process.stderr.read()).decode()
    assert simplejpeg.decode_jpeg_header(first.jpeg)[:2] == (1440, 2560)
    assert min(sizes) > protocol.MAX_FRAME_SIZE
    assert fps > 24, "%.1f fps at 2560x1440" % fps  # 80 % of 30
    assert heartbeat["camera"] == "ok" and heartbeat["frames_rejected"] == 0
    limit = protocol.frame_bytes_limit(2560, 1440, 5)
    assert (
        "[Camera] frames up to %d bytes at 2560x1440 (--max-frame-bytes to change)" % limit in log
    )
    print("serve --size 2560x1440: %.1f fps, frames of %d KB" % (fps, max(sizes) // 1000))


async def test_an_oversized_frame_names_the_option_in_the_heartbeat():
    process, url, _ = await _serve("--max-frame-bytes", "2000", "--heartbeat-ms", "100")
    try:
        async with StreamClient(url) as client:
            async with asyncio.timeout(seconds(10)):
                async for item in client:
                    if isinstance(item, ServerMessage) and item.data.get("camera") == "failed":
                        break
    finally:
        await _stop(process)
    assert "bytes > 2000; raise --max-frame-bytes)" in item.data["camera_error"]


@pytest.mark.parametrize(("fps", "text"), [("15", "15fps"), ("30", "30fps"), ("12.5", "12.5fps")])
async def test_the_welcome_says_the_real_frame_rate(fps, text):
    process, url, _ = await _serve("--fps", fps)
    try:
        async with StreamClient(url) as client:
            await asyncio.wait_for(anext(client.frames()), seconds(10))
    finally:
        await _stop(process)
    assert client.welcome["message"] == "Connected to %s drone camera stream" % text
    assert client.welcome["fps"] == float(fps)
