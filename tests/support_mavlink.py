"""MAVLink stand-ins for tests: a free UDP port, a server with --mavlink, a ground station."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from dronecam.server import ServerSettings, running_server
from dronecam.server.camera_component import MavlinkSettings
from dronecam.server.mavlink_link import mavutil
from dronecam.sources.synthetic import SyntheticCamera
from dronecam.tools.flight import FlightController
from support import seconds

MAV_CMD_REQUEST_MESSAGE = 512


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Drone:
    """A server with --mavlink on two links (the flight controller's, the ground station's)."""

    def __init__(self, server, fc_port: int, gcs_port: int, capture_dir: Path) -> None:
        self.server = server
        self.fc_port = fc_port
        self.gcs_port = gcs_port
        self.capture_dir = capture_dir

    @property
    def camera(self):
        return self.server.outputs[-1]


@contextlib.asynccontextmanager
async def drone(
    tmp_path: Path, source=None, max_age_ms: int = 3000, outputs=(), **settings: Any
) -> AsyncIterator[Drone]:
    fc_port, gcs_port = free_udp_port(), free_udp_port()
    mavlink = MavlinkSettings(
        ["udpin:127.0.0.1:%d" % fc_port, "udpin:127.0.0.1:%d" % gcs_port],
        capture_dir=tmp_path / "captures",
        stream_host="127.0.0.1",
        max_age_ms=max_age_ms,
    )
    settings.setdefault("host", "127.0.0.1")
    settings.setdefault("port", 0)
    async with running_server(
        source or SyntheticCamera(fps=30),
        ServerSettings(**settings),
        outputs=outputs,
        mavlink=mavlink,
    ) as server:
        yield Drone(server, fc_port, gcs_port, tmp_path / "captures")


@contextlib.asynccontextmanager
async def flying(port: int, rate_hz: float = 10.0) -> AsyncIterator[FlightController]:
    controller = FlightController("udpout:127.0.0.1:%d" % port, rate_hz=rate_hz)
    task = asyncio.create_task(controller.run())
    try:
        yield controller
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        controller.close()


class GroundStation:
    """A ground station's side of the camera protocol, as QGroundControl runs it (pymavlink).

    Blocking pymavlink reads run in a thread so the server (same event loop) keeps going.
    """

    def __init__(self, port: int, system_id: int = 255, component_id: int = 190) -> None:
        self.conn = mavutil().mavlink_connection(
            "udpout:127.0.0.1:%d" % port, source_system=system_id, source_component=component_id
        )
        self.mav = self.conn.mav
        self.heard: list[Any] = []

    def close(self) -> None:
        self.conn.close()

    async def receive(self, kinds: set[str], timeout_s: float = 3.0, match=None) -> Any:
        """The next message of one of `kinds` (and `match(message)`), or None after the timeout."""
        deadline = time.monotonic() + seconds(timeout_s)
        while time.monotonic() < deadline:
            message = await asyncio.to_thread(self.conn.recv_match, blocking=True, timeout=0.1)
            if message is None:
                continue
            self.heard.append(message)
            if message.get_type() in kinds and (match is None or match(message)):
                return message
        return None

    async def find_camera(self, timeout_s: float = 5.0) -> Any:
        """Send our own heartbeat (so udpin learns our address) until a camera's comes back."""
        deadline = time.monotonic() + seconds(timeout_s)
        while time.monotonic() < deadline:
            self.mav.heartbeat_send(6, 8, 0, 0, 4)  # MAV_TYPE_GCS, MAV_AUTOPILOT_INVALID
            found = await self.receive(
                {"HEARTBEAT"}, 1.0, match=lambda m: m.type == 30 and m.get_srcComponent() == 100
            )
            if found is not None:
                return found
        return None

    def command(self, command: int, *params: float, target_component: int = 100) -> None:
        values = [*params, 0, 0, 0, 0, 0, 0, 0][:7]
        self.mav.command_long_send(1, target_component, command, 0, *values)

    async def ack(self, command: int, timeout_s: float = 3.0) -> Any:
        return await self.receive({"COMMAND_ACK"}, timeout_s, match=lambda m: m.command == command)

    async def request(self, msgid: int, *params: float) -> tuple[Any, list[Any]]:
        """REQUEST_MESSAGE: its ACK, and the messages of that id that follow within 1 s."""
        self.command(MAV_CMD_REQUEST_MESSAGE, msgid, *params)
        ack = await self.ack(MAV_CMD_REQUEST_MESSAGE)
        replies = []
        while True:
            reply = await self.receive(
                {"CAMERA_INFORMATION", "CAMERA_SETTINGS", "STORAGE_INFORMATION",
                 "CAMERA_CAPTURE_STATUS", "VIDEO_STREAM_INFORMATION", "VIDEO_STREAM_STATUS"},
                1.0 if not replies else 0.3,
                match=lambda m: m.get_msgId() == msgid,
            )  # fmt: skip
            if reply is None:
                return ack, replies
            replies.append(reply)
