"""The server as a MAVLink camera component: discovery, photos, recordings (docs/mavlink.md).

It is an input and an output at once: the flight controller's messages feed the telemetry
every frame carries (`core/telemetry.py`), and ground stations find the camera by its
HEARTBEAT, read what it can do and which streams it serves, and take photos and recordings.
It lives in the server layer because it needs the server's outputs (the streams it
announces), the hub (the frames it saves) and `record.py` (the recordings it makes).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import mavlink as wire
from ..core.exif import geotag
from ..core.hub import Hub
from ..core.telemetry import TelemetryState, read_telemetry
from . import camera_messages as messages
from .camera_recording import HubRecording
from .camera_streams import VideoStream, announced_streams, local_address
from .mavlink_link import MavlinkLink, mavutil

if TYPE_CHECKING:
    from .listener import StreamServer

log = logging.getLogger("dronecam.mavlink")

MAV_COMP_ID_CAMERA = 100
# MAV_RESULT
ACCEPTED, TEMPORARILY_REJECTED, DENIED, UNSUPPORTED, FAILED = 0, 1, 2, 3, 4
# Message ids a ground station may ask for with MAV_CMD_REQUEST_MESSAGE.
CAMERA_INFORMATION = 259
CAMERA_SETTINGS = 260
STORAGE_INFORMATION = 261
CAMERA_CAPTURE_STATUS = 262
VIDEO_STREAM_INFORMATION = 269
VIDEO_STREAM_STATUS = 270
# MAV_CMD
REQUEST_MESSAGE = 512
REQUEST_CAMERA_INFORMATION = 521  # the deprecated request commands older ground stations send
REQUEST_CAMERA_SETTINGS = 522
REQUEST_STORAGE_INFORMATION = 525
REQUEST_CAMERA_CAPTURE_STATUS = 527
REQUEST_VIDEO_STREAM_INFORMATION = 2504
REQUEST_VIDEO_STREAM_STATUS = 2505
SET_CAMERA_MODE = 530
IMAGE_START_CAPTURE = 2000
IMAGE_STOP_CAPTURE = 2001
VIDEO_START_CAPTURE = 2500
VIDEO_STOP_CAPTURE = 2501
VIDEO_START_STREAMING = 2502
VIDEO_STOP_STREAMING = 2503
_REQUESTS = {
    REQUEST_CAMERA_INFORMATION: CAMERA_INFORMATION,
    REQUEST_CAMERA_SETTINGS: CAMERA_SETTINGS,
    REQUEST_STORAGE_INFORMATION: STORAGE_INFORMATION,
    REQUEST_CAMERA_CAPTURE_STATUS: CAMERA_CAPTURE_STATUS,
    REQUEST_VIDEO_STREAM_INFORMATION: VIDEO_STREAM_INFORMATION,
    REQUEST_VIDEO_STREAM_STATUS: VIDEO_STREAM_STATUS,
}
_TELEMETRY_LENGTHS = {msgid: length for msgid, (_, length) in wire.MESSAGES.items()}


class MavlinkSettings:
    """What `--mavlink` configures: links, ids, where photos and videos go."""

    def __init__(
        self,
        connections: list[str],
        system_id: int = 0,
        component_id: int = MAV_COMP_ID_CAMERA,
        capture_dir: Path | str = "captures",
        stream_host: str | None = None,
        max_age_ms: int = 3000,
        heartbeat_interval_s: float = 1.0,
    ) -> None:
        if not connections:
            raise ValueError("give at least one --mavlink connection")
        if not 0 <= system_id <= 255:
            raise ValueError("the MAVLink system id is 1 to 255 (0: the vehicle's)")
        if not 1 <= component_id <= 255:
            raise ValueError("the MAVLink component id is 1 to 255 (default 100, the camera)")
        self.connections = list(connections)
        self.system_id = system_id
        self.component_id = component_id
        self.capture_dir = Path(capture_dir)
        self.stream_host = stream_host
        self.max_age_ms = max_age_ms
        self.heartbeat_interval_s = heartbeat_interval_s


def _payload(message: Any, length: int) -> bytes:
    """The message's payload as received, zero-padded to `length`.

    From the raw packet: pymavlink 2.4's get_payload() cuts MAVLink 2 packets at the
    MAVLink 1 header length, 4 bytes early.
    """
    packet = bytes(message.get_msgbuf())
    if packet[:1] == b"\xfd":
        payload = packet[10 : 10 + packet[1]]
    else:
        payload = packet[6 : 6 + packet[1]]
    return payload + bytes(max(0, length - len(payload)))


class MavlinkCamera:
    """A StreamOutput: the camera component on every link, and the telemetry feeder."""

    name = "mavlink"

    def __init__(
        self, settings: MavlinkSettings, telemetry: TelemetryState, server: StreamServer
    ) -> None:
        self.settings = settings
        self.telemetry = telemetry
        self.server = server
        self.links = [
            MavlinkLink(c, settings.system_id or 1, settings.component_id, self._on_message)
            for c in settings.connections
        ]
        self.hub: Hub | None = None
        self.mode = 0  # CAMERA_MODE_IMAGE
        self.images = 0
        self.commands = 0
        self.commands_ignored = 0  # for other components or systems
        self.recording: HubRecording | None = None
        self.recordings = 0
        self._interval_task: asyncio.Task[None] | None = None
        self._interval_s = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self._started = time.monotonic()
        self._mav: Any = None

    @property
    def system_id(self) -> int:
        return self.settings.system_id or self.telemetry.system_id or 1

    async def start(self, hub: Hub) -> None:
        self.hub = hub
        self._mav = mavutil().mavlink
        self.settings.capture_dir.mkdir(parents=True, exist_ok=True)
        opened: list[MavlinkLink] = []
        try:
            for link in self.links:
                await link.open()
                opened.append(link)
        except Exception:
            for link in opened:
                link.close()
            raise
        self._tasks = [asyncio.create_task(self._heartbeats())]

    async def stop(self) -> None:
        for task in [*self._tasks, self._interval_task]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*[t for t in self._tasks if t], return_exceptions=True)
        if self.recording is not None:
            await self.recording.stop()
            self.recording = None
        for link in self.links:
            link.close()

    def status(self) -> dict:
        fields: dict[str, Any] = {
            "mavlink_received": sum(link.received for link in self.links),
            "mavlink_bad": sum(link.bad for link in self.links),
            "mavlink_commands": self.commands,
            "mavlink_commands_ignored": self.commands_ignored,
            "mavlink_images": self.images,
            "mavlink_recording": self.recording is not None,
            "telemetry_age_ms": self._telemetry_age_ms(),
        }
        return fields

    def _telemetry_age_ms(self) -> int | None:
        heard = self.telemetry.heard_ms
        return None if heard is None else self.server.clock.now_ms() - heard

    # Input: what the links hear.
    def _on_message(self, link: MavlinkLink, message: Any) -> None:
        msgid = message.get_msgId()
        if msgid in _TELEMETRY_LENGTHS and msgid != wire.COMMAND_LONG:
            payload = _payload(message, _TELEMETRY_LENGTHS[msgid])
            self.telemetry.apply(
                msgid,
                message.get_srcSystem(),
                message.get_srcComponent(),
                payload,
                self.server.clock.now_ms(),
            )
            if not self.settings.system_id and link.system_id != self.system_id:
                for each in self.links:
                    each.set_system_id(self.system_id)
            return
        if msgid in (wire.COMMAND_LONG, 75):  # COMMAND_INT carries the same first four params
            self._on_command(link, message)

    def _on_command(self, link: MavlinkLink, message: Any) -> None:
        target_system, target_component = message.target_system, message.target_component
        ours = target_component == self.settings.component_id
        broadcast = target_component == 0
        if target_system not in (0, self.system_id) or not (ours or broadcast):
            self.commands_ignored += 1
            return
        self.commands += 1
        command = message.command
        params = [message.param1, message.param2, message.param3, message.param4]
        try:
            result, reply = self._command(command, params)
        except Exception as error:  # a failing capture must answer FAILED, not kill the link
            log.warning("[MAVLink] command %d failed: %s", command, error)
            result, reply = FAILED, None
        if broadcast and result == UNSUPPORTED:
            return  # a command for every component: the one that knows it answers
        link.send(
            messages.command_ack(
                self._mav, command, result, message.get_srcSystem(), message.get_srcComponent()
            )
        )
        if reply is not None:
            reply(link)

    def _command(self, command: int, params: list[float]):
        """(MAV_RESULT, a function sending the reply after the ACK, or None)."""
        if command in _REQUESTS:
            command, params = REQUEST_MESSAGE, [_REQUESTS[command], params[0], 0, 0]
        if command == REQUEST_MESSAGE:
            msgid, stream = int(params[0]), int(params[1])
            senders = {
                CAMERA_INFORMATION: self._camera_information,
                CAMERA_SETTINGS: self._camera_settings,
                STORAGE_INFORMATION: self._storage_information,
                CAMERA_CAPTURE_STATUS: self._capture_status,
                VIDEO_STREAM_INFORMATION: lambda link: self._stream_information(link, stream),
                VIDEO_STREAM_STATUS: lambda link: self._stream_status(link, stream),
            }
            sender = senders.get(msgid)
            return (UNSUPPORTED, None) if sender is None else (ACCEPTED, sender)
        if command == SET_CAMERA_MODE:
            if int(params[1]) not in (0, 1):
                return DENIED, None
            self.mode = int(params[1])
            return ACCEPTED, None
        if command == IMAGE_START_CAPTURE:
            return self._start_images(params[1], int(params[2]))
        if command == IMAGE_STOP_CAPTURE:
            if self._interval_task is not None:
                self._interval_task.cancel()
                self._interval_task = None
            return ACCEPTED, None
        if command == VIDEO_START_CAPTURE:
            return self._start_video()
        if command == VIDEO_STOP_CAPTURE:
            return self._stop_video()
        if command in (VIDEO_START_STREAMING, VIDEO_STOP_STREAMING):
            return ACCEPTED, None  # the streams are always on while the server runs
        return UNSUPPORTED, None

    # Photos.
    def _start_images(self, interval_s: float, count: int):
        if self.hub is None or self.hub.latest is None:
            return TEMPORARILY_REJECTED, None  # no frame yet: the camera is starting
        if count == 1 or interval_s <= 0:
            return ACCEPTED, lambda link: self._capture()
        if self._interval_task is not None:
            return TEMPORARILY_REJECTED, None
        self._interval_s = interval_s
        self._interval_task = asyncio.create_task(self._interval(interval_s, count))
        return ACCEPTED, None

    async def _interval(self, interval_s: float, count: int) -> None:
        taken = 0
        try:
            while count == 0 or taken < count:
                self._capture()
                taken += 1
                await asyncio.sleep(interval_s)
        finally:
            self._interval_task = None

    def _capture(self) -> None:
        """Save the newest frame, geotagged with its own telemetry; say so on every link."""
        assert self.hub is not None and self.hub.latest is not None
        frame = self.hub.latest
        jpeg = bytes(frame.jpeg())
        telemetry = read_telemetry(jpeg)
        path = self._free_path("IMG_", ".jpg")
        path.write_bytes(geotag(jpeg, telemetry))
        index = self.images
        self.images += 1
        log.info("[MAVLink] image %d saved: %s", index, path)
        captured = messages.image_captured(self._mav, self._boot_ms(), telemetry, index, path)
        for link in self.links:
            link.send(captured)

    def _free_path(self, prefix: str, suffix: str) -> Path:
        """The next numbered file in the capture folder: never one that exists."""
        number = self.images + self.recordings
        while True:
            path = self.settings.capture_dir / ("%s%05d%s" % (prefix, number, suffix))
            if not path.exists():
                return path
            number += 1

    # Videos.
    def _start_video(self):
        if self.recording is not None:
            return TEMPORARILY_REJECTED, None
        assert self.hub is not None
        path = self._free_path("VID_", ".mkv")
        self.recording = HubRecording(self.hub, path)
        self.recordings += 1
        log.info("[MAVLink] recording to %s", path)
        return ACCEPTED, self._capture_status

    def _stop_video(self):
        recording = self.recording
        if recording is None:
            return ACCEPTED, None  # already stopped: the ground station may repeat itself
        self.recording = None
        task = asyncio.create_task(recording.stop())
        self._tasks.append(task)
        log.info("[MAVLink] recording stopped: %s", recording.recording.path)
        return ACCEPTED, self._capture_status

    # Replies.
    def _boot_ms(self) -> int:
        return int((time.monotonic() - self._started) * 1000) & 0xFFFFFFFF

    def _camera_information(self, link: MavlinkLink) -> None:
        source = self.server.feed.source
        width = int(getattr(source, "width", 0) or 0)
        height = int(getattr(source, "height", 0) or 0)
        model = str(getattr(source, "name", "camera"))
        link.send(messages.camera_information(self._mav, self._boot_ms(), model, width, height))

    def _camera_settings(self, link: MavlinkLink) -> None:
        link.send(messages.camera_settings(self._mav, self._boot_ms(), self.mode))

    def _storage_information(self, link: MavlinkLink) -> None:
        folder = self.settings.capture_dir
        link.send(messages.storage_information(self._mav, self._boot_ms(), folder))

    def _capture_status(self, link: MavlinkLink) -> None:
        interval_s = self._interval_s if self._interval_task is not None else None
        recording_ms = self.recording.elapsed_ms if self.recording is not None else None
        link.send(
            messages.capture_status(
                self._mav, self._boot_ms(), interval_s, recording_ms, self.images,
                self.settings.capture_dir,
            )
        )  # fmt: skip

    def _streams(self) -> list[VideoStream]:
        host = self.settings.stream_host or (
            self.server.settings.host
            if self.server.settings.host not in ("0.0.0.0", "::", "")
            else local_address()
        )
        return announced_streams(self.server, host)

    def _stream_information(self, link: MavlinkLink, stream_id: int) -> None:
        streams = self._streams()
        for number, stream in enumerate(streams, start=1):
            if stream_id in (0, number):
                link.send(messages.stream_information(self._mav, number, len(streams), stream))

    def _stream_status(self, link: MavlinkLink, stream_id: int) -> None:
        for number, stream in enumerate(self._streams(), start=1):
            if stream_id in (0, number):
                link.send(messages.stream_status(self._mav, number, stream, self.server.hub.fps()))

    async def _heartbeats(self) -> None:
        while True:
            for link in self.links:
                link.send(messages.heartbeat(self._mav))
            self.telemetry.set_wall_clock(time.time_ns() // 1_000_000, self.server.clock.now_ms())
            await asyncio.sleep(self.settings.heartbeat_interval_s)
