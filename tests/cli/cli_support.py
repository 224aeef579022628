"""The `dronecam` command run as a user runs it: a real child process, its exit code and output."""

import asyncio

from support import seconds, start_dronecam


async def dronecam(*args: str, timeout_s: float = 20) -> tuple[int, str]:
    process = await start_dronecam(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), seconds(timeout_s))
    return process.returncode or 0, output.decode()
