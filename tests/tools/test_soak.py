"""tools/soak.py for five seconds: clients come and go, the server's resources end where they began."""

import os

from dronecam.tools.soak import SoakSettings, run_soak
from support import ListSource, host_server, seconds, synthetic_jpegs
from support_firmware import SMALL_HEAP


async def test_five_second_soak_leaves_the_server_flat():
    settings = SoakSettings(
        duration_s=seconds(5),
        steady_clients=2,
        churn_clients=3,
        server_args=("--size", "320x240", "--max-clients", "5"),
        settle_s=1.0,
        samples=2,
    )
    result = await run_soak(settings, log=lambda message: None)
    assert not result.failures, result.failures
    assert result.sessions >= 5
    assert result.before["tasks"] == result.after["tasks"]
    assert result.before["fds"] == result.after["fds"]
    assert result.before["connections"] == result.after["connections"] == 2
    assert result.after["clients"] == 2
    assert all(fps > 0 for fps in result.steady_fps)
    assert result.flat(), result.report()
    assert "| open file descriptors |" in result.report()


async def test_five_second_soak_of_the_firmware_in_a_small_heap():
    settings = SoakSettings(
        duration_s=seconds(5), settle_s=1.0, samples=2, firmware=True, heapsize=SMALL_HEAP
    )
    result = await run_soak(settings, log=lambda message: None)
    assert not result.failures, result.failures
    assert result.target.startswith("firmware") and SMALL_HEAP in result.target
    assert result.sessions >= 5
    assert result.before["fds"] == result.after["fds"]
    assert result.after["clients"] == 2
    assert result.after["heap_used"] - result.before["heap_used"] <= 16 * 1024
    assert all(fps >= 25 for fps in result.steady_fps), result.steady_fps
    assert result.flat(), result.report()


async def test_soak_of_a_running_server_by_url_and_pid():
    async with host_server(ListSource(synthetic_jpegs(5, 320, 240))) as server:
        settings = SoakSettings(
            duration_s=seconds(2), url=server.url, pid=os.getpid(), settle_s=0.5, samples=1
        )
        result = await run_soak(settings, log=lambda message: None)
    assert result.target == server.url
    assert not result.failures, result.failures
    assert result.sessions >= 1
    assert result.before["fds"] == result.after["fds"]
    assert "tasks" not in result.before  # only a child server can count its own tasks
