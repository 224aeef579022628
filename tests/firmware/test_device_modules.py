"""The firmware's camera, board presets and frame ring, checked under the MicroPython binary."""

import subprocess
from pathlib import Path

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
