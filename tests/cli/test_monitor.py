"""`dronecam stats` (cli/monitor.py) as a user runs it: live figures, then a summary line."""

import asyncio
import re

from cli_support import dronecam

from support import host_server, seconds, start_dronecam


async def test_stats_shows_live_figures_then_a_summary():
    async with host_server() as server:
        code, output = await dronecam("stats", server.url, "--duration", "2")
    assert code == 0, output
    summary = output.strip().splitlines()[-1]
    assert summary.startswith("frames ") and "fps" in summary and "latency p50" in summary


async def test_the_summary_fps_counts_an_outage():
    # 216 frames in 16 s is 13.5 fps, whatever the rate in the last second was.
    async with host_server() as server:
        port = server.port
        process = await start_dronecam(
            "stats",
            server.url,
            "--duration",
            "6",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        await asyncio.sleep(2)
    await asyncio.sleep(2.5)  # the camera's server is down
    async with host_server(port=port):
        output, err = await asyncio.wait_for(process.communicate(), seconds(20))
    assert process.returncode == 0, err.decode()
    summary = output.decode().strip().splitlines()[-1]
    match = re.match(r"frames (\d+) in ([0-9.]+) s, fps ([0-9.]+),", summary)
    assert match, summary
    frames, seconds_run, fps = int(match[1]), float(match[2]), float(match[3])
    assert 5.9 < seconds_run < 7 and abs(fps - frames / seconds_run) < 0.1
    assert 5 < fps < 22, summary  # the server sent 30 fps for about 3.5 of the 6 s
    assert "reconnects 1" in summary
