"""`dronecam snapshot` (cli/clients.py) as a user runs it: a real process against a real server."""

from pathlib import Path

import simplejpeg
from cli_support import dronecam

from dronecam.core import protocol
from support import host_server


async def test_snapshot_saves_a_tagged_jpeg(tmp_path: Path):
    out = tmp_path / "frame.jpg"
    async with host_server() as server:
        code, output = await dronecam("snapshot", server.url, str(out))
    assert code == 0, output
    jpeg = out.read_bytes()
    assert simplejpeg.decode_jpeg(jpeg).shape == (480, 640, 3)
    assert protocol.read_tag(jpeg) is not None


async def test_unreachable_server_is_a_clear_error():
    code, output = await dronecam("snapshot", "ws://127.0.0.1:9/ws", "/dev/null")
    assert code == 1
    assert "cannot reach ws://127.0.0.1:9/ws" in output
