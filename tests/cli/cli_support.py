"""The `dronecam` command run as a user runs it: a real child process, its exit code and output."""

import asyncio
import os
import sys

from support import seconds

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
