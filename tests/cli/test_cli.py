"""The `dronecam` command as a user runs it: a real process against a real server."""

import asyncio
import os
import sys
from pathlib import Path

import simplejpeg

from dronecam.core import protocol
from support import host_server, seconds

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


async def dronecam(*args: str, timeout_s: float = 20) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dronecam",
        *args,
        env=ENV,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), seconds(timeout_s))
    return process.returncode or 0, output.decode()


async def test_help_lists_every_command():
    code, output = await dronecam("--help")
    assert code == 0
    for command in ("serve", "stats", "view", "snapshot"):
        assert command in output


async def test_snapshot_saves_a_tagged_jpeg(tmp_path: Path):
    out = tmp_path / "frame.jpg"
    async with host_server() as server:
        code, output = await dronecam("snapshot", server.url, str(out))
    assert code == 0, output
    jpeg = out.read_bytes()
    assert simplejpeg.decode_jpeg(jpeg).shape == (480, 640, 3)
    assert protocol.read_tag(jpeg) is not None


async def test_stats_shows_live_figures_then_a_summary():
    async with host_server() as server:
        code, output = await dronecam("stats", server.url, "--duration", "2")
    assert code == 0, output
    summary = output.strip().splitlines()[-1]
    assert summary.startswith("frames ") and "fps" in summary and "latency p50" in summary


async def test_unreachable_server_is_a_clear_error():
    code, output = await dronecam("snapshot", "ws://127.0.0.1:9/ws", "/dev/null")
    assert code == 1
    assert "cannot reach ws://127.0.0.1:9/ws" in output


async def test_view_without_a_gui_says_what_to_install():
    async with host_server() as server:
        code, output = await dronecam("view", server.url)
    assert code != 0
    assert "dronecam[view]" in output


async def test_serve_rejects_bad_options():
    code, output = await dronecam("serve", "--size", "big")
    assert code != 0 and "--size must look like 640x480" in output
    code, output = await dronecam("serve", "--source", "nonsense:")
    assert code == 2 and "unknown source" in output
