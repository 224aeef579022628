"""tools/firmware.py: the bundle, precompiling, the unix-port runner, deploying (transport replaced)."""

import subprocess
from pathlib import Path

import pytest
import websockets

from dronecam.tools import firmware as firmware_host
from dronecam.tools.firmware import FirmwareError, HostFirmware, build_bundle, deploy, precompile
from support import seconds
from support_firmware import CORE_DIR, DEVICE_FILES, shared_dir


def test_bundle_has_the_device_layout_and_no_host_stand_ins(tmp_path):
    assert set(build_bundle(tmp_path)) == DEVICE_FILES
    assert not (tmp_path / "camera.py").exists() and not (tmp_path / "network.py").exists()
    assert (tmp_path / "dronecam" / "__init__.py").read_text() == ""


async def test_precompiled_bundle_runs_under_micropython(tmp_path):
    build_bundle(tmp_path / "sources")
    compiled = precompile(tmp_path / "sources", tmp_path / "bundle")
    sources = {p for p in compiled if p.endswith(".py")}
    assert sources == {"boot.py", "main.py", "config.py", "dronecam/__init__.py"}
    assert all(
        (tmp_path / "bundle" / p).read_bytes()[:1] == b"M" for p in compiled if p.endswith(".mpy")
    )
    firmware = HostFirmware(shared_dir() / "frames", tmp_path)
    await firmware.start(timeout_s=seconds(10))
    try:
        async with websockets.connect(firmware.url) as ws:
            assert "welcome" in await ws.recv()
    finally:
        await firmware.stop()


class Recorder:
    """Stands in for subprocess.run on the mpremote calls; checks what would be copied."""

    def __init__(self, returncode: int = 0) -> None:
        self.calls: list[list[str]] = []
        self.returncode = returncode

    def __call__(self, command: list[str]) -> subprocess.CompletedProcess:
        self.calls.append(command)
        if command[3:6] == ["fs", "cp", "-r"]:
            staged = Path(command[6])
            self.copied_tree = sorted(
                p.relative_to(staged.parent).as_posix() for p in staged.rglob("*") if p.is_file()
            )
        elif command[3:5] == ["fs", "cp"]:
            self.copied_root = sorted(Path(p).name for p in command[5:-1] if Path(p).is_file())
        return subprocess.CompletedProcess(command, self.returncode)


def test_deploy_makes_exactly_these_mpremote_calls():
    recorder = Recorder()
    deploy("/dev/ttyACM0", run=recorder, log=lambda line: None)
    mpremote = firmware_host.tool("mpremote")
    staged = Path(recorder.calls[1][6]).parent
    cleanup = recorder.calls[0][4]
    assert recorder.calls == [
        [mpremote, "connect", "/dev/ttyACM0", "exec", cleanup],
        [mpremote, "connect", "/dev/ttyACM0", "fs", "cp", "-r", str(staged / "dronecam"), ":"],
        [mpremote, "connect", "/dev/ttyACM0", "fs", "cp"]
        + [str(staged / name) for name in sorted(recorder.copied_root)]
        + [":"],
        [mpremote, "connect", "/dev/ttyACM0", "reset"],
    ]
    assert recorder.copied_root == sorted(
        [
            "boards.mpy",
            "boot.py",
            "config.py",
            "connection.mpy",
            "device.mpy",
            "frame_ring.mpy",
            "main.py",
            "ov2640.mpy",
            "stream_server.mpy",
        ]
    )
    assert recorder.copied_tree == sorted(
        ["dronecam/__init__.py"]
        + ["dronecam/core/%s.mpy" % path.stem for path in CORE_DIR.glob("*.py")]
    )
    # Stale sources of precompiled modules would shadow the .mpy files: the cleanup removes them.
    assert "'device.py'" in cleanup and "'dronecam/core/hub.py'" in cleanup
    assert "'config.py'" not in cleanup and "'main.py'" not in cleanup


def test_deploy_installs_the_users_config(tmp_path):
    mine = tmp_path / "config.py"
    mine.write_text('AP_PASSWORD = "a long secret"\n')
    seen = []

    def run(command):
        if command[3:5] == ["fs", "cp"] and command[5] != "-r":
            seen.append(next(Path(p).read_text() for p in command[5:-1] if p.endswith("config.py")))
        return subprocess.CompletedProcess(command, 0)

    deploy("/dev/ttyACM0", config=mine, run=run, log=lambda line: None)
    assert seen == ['AP_PASSWORD = "a long secret"\n']


def test_deploy_stops_at_the_first_failing_call():
    recorder = Recorder(returncode=1)
    with pytest.raises(FirmwareError, match="/dev/ttyUSB0"):
        deploy("/dev/ttyUSB0", run=recorder, log=lambda line: None)
    assert len(recorder.calls) == 1
