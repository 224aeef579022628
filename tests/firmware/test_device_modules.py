"""The firmware's camera, board presets and frame ring, checked under the MicroPython binary."""

import socket
import subprocess
from pathlib import Path

import pytest

from dronecam.tools.firmware import host_command, tool
from support import seconds
from support_firmware import shared_dir


def test_device_modules_under_micropython():
    root = shared_dir()
    _, env = host_command(root / "bundle")
    env["DRONECAM_FRAMES"] = str(root / "frames")
    env["DRONECAM_FPS"] = "200"
    result = subprocess.run(
        [tool("micropython"), str(Path(__file__).with_name("device_checks.py"))],
        env=env,
        capture_output=True,
        text=True,
        timeout=seconds(60),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "device checks passed" in result.stdout


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("port in use", "[Device] cannot start: cannot listen on 127.0.0.1:{port}"),
        ("heap without room for the ring", "[Device] cannot start: no room for 3 frame slots"),
        ("no frames folder", "[camera stand-in] cannot start: DRONECAM_FRAMES={root}/none is"),
        ("more frames than the heap", "[camera stand-in] cannot start: 20 frames ("),
    ],
)
def test_a_device_that_cannot_start_says_why_in_one_line(case, says):
    root = shared_dir()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        heapsize = {"heap without room for the ring": "256k", "more frames than the heap": "600k"}
        command, env = host_command(
            root / "bundle", port=port if case == "port in use" else 0, heapsize=heapsize.get(case)
        )
        env["DRONECAM_FRAMES"] = str(root / ("none" if case == "no frames folder" else "frames"))
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(says.format(port=port, root=root)), lines
