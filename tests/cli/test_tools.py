"""`dronecam firmware`, `soak` and `bench` (cli/tools.py): the commands reach their tools."""

import asyncio
import re
from pathlib import Path

import websockets

from dronecam import cli
from support import seconds, start_dronecam
from support_firmware import DEVICE_FILES, shared_dir


def test_cli_bundle_writes_the_same_files(tmp_path, capsys):
    assert cli.main(["firmware", "bundle", str(tmp_path / "out")]) == 0
    written = {
        str(Path(line).relative_to(tmp_path / "out")) for line in capsys.readouterr().out.split()
    }
    assert written == DEVICE_FILES


async def test_cli_firmware_run_serves_until_stopped():
    process = await start_dronecam(
        "firmware",
        "run",
        "--port",
        "0",
        "--frames",
        str(shared_dir() / "frames"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        url = None
        while url is None:
            line = await asyncio.wait_for(process.stdout.readline(), seconds(15))
            assert line, "dronecam firmware run ended early"
            match = re.search(rb"WebSocket endpoint: (ws://\S+)", line)
            url = match.group(1).decode() if match else None
        async with websockets.connect(url) as ws:
            assert "welcome" in await asyncio.wait_for(ws.recv(), seconds(5))
    finally:
        process.terminate()
        await process.wait()


def test_soak_command_rejects_a_soak_without_steady_clients(capsys):
    assert cli.main(["soak", "--steady", "0", "--duration", "1"]) == 2
    assert "steady client" in capsys.readouterr().err


def test_soak_flag_runs_the_soak_test(capsys):
    assert cli.main(["bench", "--soak", "3", "-n", "1"]) == 0
    assert "flat" in capsys.readouterr().out
