"""`dronecam stats` (cli/monitor.py) as a user runs it: live figures, then a summary line."""

from cli_support import dronecam

from support import host_server


async def test_stats_shows_live_figures_then_a_summary():
    async with host_server() as server:
        code, output = await dronecam("stats", server.url, "--duration", "2")
    assert code == 0, output
    summary = output.strip().splitlines()[-1]
    assert summary.startswith("frames ") and "fps" in summary and "latency p50" in summary
