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
import math
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import mavlink as wire
from ..core.exif import geotag
from ..core.hub import Hub, Subscription
from ..core.telemetry import Telemetry, TelemetryState, read_telemetry
from .mavlink_link import MavlinkLink, mavutil

if TYPE_CHECKING:
    from .listener import StreamServer

log = logging.getLogger("dronecam.mavlink")

MAV_COMP_ID_CAMERA = 100
MAV_TYPE_CAMERA = 30
MAV_AUTOPILOT_INVALID = 8
MAV_STATE_ACTIVE = 4
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
# CAMERA_CAP_FLAGS this camera really has.
CAPABILITIES = (
    1 | 2 | 4 | 8 | 16 | 256
)  # video, image, modes, image in video, video in image, stream
# VIDEO_STREAM_TYPE and VIDEO_STREAM_ENCODING
STREAM_RTSP, STREAM_RTPUDP, STREAM_TCP_MPEG, STREAM_MPEG_TS = 0, 1, 2, 3
ENCODING_UNKNOWN, ENCODING_H264 = 0, 1
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


class VideoStream:
    """One stream the camera announces in VIDEO_STREAM_INFORMATION."""

    def __init__(
        self,
        name: str,
        uri: str,
        kind: int,
        encoding: int,
        width: int,
        height: int,
        fps: float,
    ) -> None:
        self.name = name
        self.uri = uri
        self.kind = kind
        self.encoding = encoding
        self.width = width
        self.height = height
        self.fps = fps


def announced_streams(server: StreamServer, host: str) -> list[VideoStream]:
    """The streams this server really serves: an output's own `video_streams(host)` first
    (H.264 outputs know their type), then the MJPEG over HTTP path, then the WebSocket."""
    width = int(getattr(server.feed.source, "width", 0) or 0)
    height = int(getattr(server.feed.source, "height", 0) or 0)
    fps = float(getattr(server.feed.source, "fps", 0) or 0)
    streams: list[VideoStream] = []
    for output in server.outputs:
        describe = getattr(output, "video_streams", None)
        if describe is not None:
            streams.extend(describe(host))
    port = server.port
    for output in server.outputs:
        for path in getattr(output, "routes", {}) or {}:
            if path.endswith(".mjpg") or path.endswith(".mjpeg"):
                uri = "%s://%s:%d%s" % (server.settings.http_scheme, host, port, path)
                # MAVLink has no type for MJPEG over HTTP or JPEG over WebSocket; TCP_MPEG
                # with encoding UNKNOWN is the nearest, and the URI says what it is.
                streams.append(
                    VideoStream("MJPEG", uri, STREAM_TCP_MPEG, ENCODING_UNKNOWN, width, height, fps)
                )
    uri = "%s://%s:%d/ws" % (server.settings.scheme, host, port)
    streams.append(
        VideoStream("WebSocket JPEG", uri, STREAM_TCP_MPEG, ENCODING_UNKNOWN, width, height, fps)
    )
    return streams


def _local_address() -> str:
    """This machine's address on its default route (no packet is sent), or 127.0.0.1."""
    import socket

    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 1))
        return str(probe.getsockname()[0])
    except OSError:
        return "127.0.0.1"
    finally:
        probe.close()


def _quaternion(telemetry: Telemetry | None) -> list[float]:
    if telemetry is None or telemetry.roll_deg is None:
        return [math.nan, 0.0, 0.0, 0.0]
    roll, pitch, yaw = (
        math.radians(v or 0.0) for v in (telemetry.roll_deg, telemetry.pitch_deg, telemetry.yaw_deg)
    )
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return [
        cr * cp * cy + sr * sp * sy,
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
    ]


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


class HubRecording:
    """A recording fed from the hub: newest frame wins, written by one worker thread."""

    def __init__(self, hub: Hub, path: Path) -> None:
        from ..record import Recording

        self.hub = hub
        self.recording = Recording(path)
        self.started = time.monotonic()
        self.skipped = 0
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dronecam-mavrec")
        self._busy = False
        self._subscription: Subscription | None = hub.subscribe(self._on_frame)

    def _on_frame(self) -> None:
        if self._busy or self._subscription is None:
            return
        frame = self._subscription.take()
        if frame is None:
            return
        self._busy = True
        future = self._writer.submit(self.recording.write, bytes(frame.jpeg()), frame.capture_us)
        future.add_done_callback(self._written)

    def _written(self, future) -> None:
        self._busy = False
        if future.exception() is not None:
            log.warning("[MAVLink] recording: %s", future.exception())

    @property
    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    async def stop(self) -> None:
        if self._subscription is not None:
            self.hub.unsubscribe(self._subscription)
            self._subscription = None
        await asyncio.to_thread(self._writer.shutdown, True)
        self.recording.close()


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
        link.send(self._mav.MAVLink_command_ack_message(
            command, result, 0, 0, message.get_srcSystem(), message.get_srcComponent()
        ))  # fmt: skip
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
            return ACCEPTED, lambda link: self._capture(link)
        if self._interval_task is not None:
            return TEMPORARILY_REJECTED, None
        self._interval_s = interval_s
        self._interval_task = asyncio.create_task(self._interval(interval_s, count))
        return ACCEPTED, None

    async def _interval(self, interval_s: float, count: int) -> None:
        taken = 0
        try:
            while count == 0 or taken < count:
                for link in self.links:
                    self._capture(link)
                taken += 1
                await asyncio.sleep(interval_s)
        finally:
            self._interval_task = None

    def _capture(self, link: MavlinkLink) -> None:
        """Save the newest frame, geotagged with its own telemetry; say so on `link`."""
        assert self.hub is not None and self.hub.latest is not None
        frame = self.hub.latest
        jpeg = bytes(frame.jpeg())
        telemetry = read_telemetry(jpeg)
        path = self._free_path("IMG_", ".jpg")
        path.write_bytes(geotag(jpeg, telemetry))
        index = self.images
        self.images += 1
        log.info("[MAVLink] image %d saved: %s", index, path)
        time_utc = (
            telemetry.time_unix_ms
            if telemetry and telemetry.time_unix_ms
            else int(time.time() * 1000)
        ) * 1000

        def e7(value: float | None) -> int:
            return 0 if value is None else round(value * 1e7)

        def mm(value: float | None) -> int:
            return 0 if value is None else round(value * 1000)

        link.send(self._mav.MAVLink_camera_image_captured_message(
            self._boot_ms(), time_utc, 0,
            e7(telemetry.lat_deg if telemetry else None), e7(telemetry.lon_deg if telemetry else None),
            mm(telemetry.alt_msl_m if telemetry else None), mm(telemetry.alt_rel_m if telemetry else None),
            _quaternion(telemetry), index, 1, path.resolve().as_uri()[:205].encode(),
        ))  # fmt: skip

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
        model = str(getattr(source, "name", "camera"))[:32]
        link.send(self._mav.MAVLink_camera_information_message(
            self._boot_ms(), list(b"dronecam".ljust(32, b"\0")),
            list(model.encode()[:32].ljust(32, b"\0")),
            0, math.nan, math.nan, math.nan, width, height, 0, CAPABILITIES, 0, b"", 0, 0,
        ))  # fmt: skip

    def _camera_settings(self, link: MavlinkLink) -> None:
        link.send(
            self._mav.MAVLink_camera_settings_message(
                self._boot_ms(), self.mode, math.nan, math.nan, 0
            )
        )

    def _storage_information(self, link: MavlinkLink) -> None:
        usage = shutil.disk_usage(self.settings.capture_dir)
        mib = 1024 * 1024
        link.send(self._mav.MAVLink_storage_information_message(
            self._boot_ms(), 1, 1, 2, usage.total / mib, usage.used / mib, usage.free / mib,
            math.nan, math.nan, 254, str(self.settings.capture_dir)[-32:].encode(), 1 | 2 | 4,
        ))  # fmt: skip

    def _capture_status(self, link: MavlinkLink) -> None:
        free_mib = shutil.disk_usage(self.settings.capture_dir).free / (1024 * 1024)
        interval = self._interval_task is not None
        link.send(self._mav.MAVLink_camera_capture_status_message(
            self._boot_ms(), 3 if interval else 0, 1 if self.recording else 0,
            self._interval_s if interval else 0.0,
            self.recording.elapsed_ms if self.recording else 0, free_mib, self.images, 0,
        ))  # fmt: skip

    def _streams(self) -> list[VideoStream]:
        host = self.settings.stream_host or (
            self.server.settings.host
            if self.server.settings.host not in ("0.0.0.0", "::", "")
            else _local_address()
        )
        return announced_streams(self.server, host)

    def _stream_information(self, link: MavlinkLink, stream_id: int) -> None:
        streams = self._streams()
        for number, stream in enumerate(streams, start=1):
            if stream_id in (0, number):
                link.send(self._mav.MAVLink_video_stream_information_message(
                    number, len(streams), stream.kind, 1, stream.fps, stream.width, stream.height,
                    0, 0, 0, stream.name.encode()[:32], stream.uri.encode()[:160],
                    stream.encoding, 0,
                ))  # fmt: skip

    def _stream_status(self, link: MavlinkLink, stream_id: int) -> None:
        streams = self._streams()
        for number, stream in enumerate(streams, start=1):
            if stream_id in (0, number):
                link.send(self._mav.MAVLink_video_stream_status_message(
                    number, 1, self.server.hub.fps() or stream.fps, stream.width, stream.height,
                    0, 0, 0, 0,
                ))  # fmt: skip

    async def _heartbeats(self) -> None:
        while True:
            for link in self.links:
                link.send(self._mav.MAVLink_heartbeat_message(
                    MAV_TYPE_CAMERA, MAV_AUTOPILOT_INVALID, 0, 0, MAV_STATE_ACTIVE, 3
                ))  # fmt: skip
            self.telemetry.set_wall_clock(time.time_ns() // 1_000_000, self.server.clock.now_ms())
            await asyncio.sleep(self.settings.heartbeat_interval_s)
