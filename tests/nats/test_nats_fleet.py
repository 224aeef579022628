"""The fleet: cameras register by their status, leave when they stop or die; `dronecam fleet`."""

import asyncio
import os
import signal
import subprocess
import sys
import time

from dronecam import bus
from dronecam.tools.natsd import free_port
from support import seconds
from support_nats import origin


async def _wait_for(predicate, timeout_s: float = 5) -> float:
    """Seconds until `predicate()` holds (polled), or AssertionError after `timeout_s`."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > seconds(timeout_s):
            raise AssertionError("not within %g s" % timeout_s)
        await asyncio.sleep(0.02)
    return time.monotonic() - start


def _serve(nats_url: str, name: str) -> subprocess.Popen[bytes]:
    """A camera server in its own process, publishing as `name` (so that it can be killed)."""
    command = [sys.executable, "-m", "dronecam", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(free_port()), "--heartbeat-ms", "200"]
    command += ["--publish", nats_url, "--name", name]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def test_cameras_join_the_fleet_and_leave_when_they_stop_or_die(nats_server):
    address = bus.NatsAddress(nats_server.url)
    client = await bus.connect(address, "test-fleet")
    fleet = bus.Fleet()
    await fleet.watch(client)
    doomed = _serve(nats_server.url, "doomed")
    try:
        async with origin(nats_server.url, name="polite") as polite:

            def statuses() -> dict:
                return {name: status for name, status, _ in fleet.live()}

            await _wait_for(lambda: "doomed" in statuses(), 15)
            await _wait_for(lambda: statuses().get("polite", {}).get("fps", 0) > 20)
            status = statuses()["polite"]
            assert status["url"] == polite.url and status["camera"] == "ok"
            assert status["width"] == 640 and 20 <= status["fps"] <= 40
            assert status["clients"] == 0 and status["frame_bytes"] > 1000
            ttl_s = status["ttl_s"]
            os.kill(doomed.pid, signal.SIGKILL)
            gone_s = await _wait_for(lambda: "doomed" not in statuses())
            print("a killed camera left the fleet after %.2f s (TTL %.1f s)" % (gone_s, ttl_s))
            assert gone_s <= ttl_s + 0.3
        gone_s = await _wait_for(lambda: not fleet.live(), 1)
        assert gone_s < 0.5  # a camera that stops says so and leaves at once
    finally:
        doomed.kill()
        doomed.wait(timeout=10)
        await client.close()


async def test_the_fleet_command_lists_the_live_cameras(nats_server):
    async with origin(nats_server.url, name="alpha"), origin(nats_server.url, name="bravo"):
        command = [sys.executable, "-m", "dronecam", "fleet", nats_server.url, "--duration", "1.5"]
        result = await asyncio.to_thread(
            subprocess.run, command, capture_output=True, text=True, timeout=seconds(20),
            env={**os.environ, "COLUMNS": "160"},
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "alpha" in result.stdout and "bravo" in result.stdout
        assert "ok" in result.stdout and "640x480" in result.stdout


def test_the_fleet_command_says_in_one_line_when_nats_is_unreachable():
    command = [sys.executable, "-m", "dronecam", "fleet", "nats://127.0.0.1:%d" % free_port()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds(20))
    assert result.returncode == 1
    assert result.stderr.startswith("dronecam: cannot reach NATS at nats://127.0.0.1:")
    assert len(result.stderr.strip().splitlines()) == 1
