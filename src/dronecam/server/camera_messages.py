"""The MAVLink messages the camera component sends, built with pymavlink's common dialect."""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path
from typing import Any

from ..core.telemetry import Telemetry
from .camera_streams import VideoStream

MAV_TYPE_CAMERA = 30
MAV_AUTOPILOT_INVALID = 8
MAV_STATE_ACTIVE = 4
# CAMERA_CAP_FLAGS this camera really has: capture video, capture image, has modes, image in
# video mode, video in image mode, has video stream.
CAPABILITIES = 1 | 2 | 4 | 8 | 16 | 256
STORAGE_STATUS_READY = 2
STORAGE_TYPE_OTHER = 254
STORAGE_USAGE_SET_PHOTO_VIDEO = 1 | 2 | 4
VIDEO_STREAM_STATUS_FLAGS_RUNNING = 1
_MIB = 1024 * 1024


def _text(value: str, size: int) -> list[int]:
    """A char[size] field as pymavlink's uint8 arrays take it (NUL-padded)."""
    return list(value.encode()[:size].ljust(size, b"\0"))


def heartbeat(mav: Any) -> Any:
    return mav.MAVLink_heartbeat_message(
        type=MAV_TYPE_CAMERA,
        autopilot=MAV_AUTOPILOT_INVALID,
        base_mode=0,
        custom_mode=0,
        system_status=MAV_STATE_ACTIVE,
        mavlink_version=3,
    )


def command_ack(mav: Any, command: int, result: int, system: int, component: int) -> Any:
    return mav.MAVLink_command_ack_message(
        command=command,
        result=result,
        progress=0,
        result_param2=0,
        target_system=system,
        target_component=component,
    )


def camera_information(mav: Any, boot_ms: int, model: str, width: int, height: int) -> Any:
    return mav.MAVLink_camera_information_message(
        time_boot_ms=boot_ms,
        vendor_name=_text("dronecam", 32),
        model_name=_text(model, 32),
        firmware_version=0,
        focal_length=math.nan,
        sensor_size_h=math.nan,
        sensor_size_v=math.nan,
        resolution_h=width,
        resolution_v=height,
        lens_id=0,
        flags=CAPABILITIES,
        cam_definition_version=0,
        cam_definition_uri=b"",
        gimbal_device_id=0,
        camera_device_id=0,
    )


def camera_settings(mav: Any, boot_ms: int, mode: int) -> Any:
    return mav.MAVLink_camera_settings_message(
        time_boot_ms=boot_ms, mode_id=mode, zoomLevel=math.nan, focusLevel=math.nan,
        camera_device_id=0,
    )  # fmt: skip


def storage_information(mav: Any, boot_ms: int, folder: Path) -> Any:
    usage = shutil.disk_usage(folder)
    return mav.MAVLink_storage_information_message(
        time_boot_ms=boot_ms,
        storage_id=1,
        storage_count=1,
        status=STORAGE_STATUS_READY,
        total_capacity=usage.total / _MIB,
        used_capacity=usage.used / _MIB,
        available_capacity=usage.free / _MIB,
        read_speed=math.nan,
        write_speed=math.nan,
        type=STORAGE_TYPE_OTHER,
        name=str(folder)[-32:].encode(),
        storage_usage=STORAGE_USAGE_SET_PHOTO_VIDEO,
    )


def capture_status(
    mav: Any,
    boot_ms: int,
    interval_s: float | None,
    recording_ms: int | None,
    images: int,
    folder: Path,
) -> Any:
    """CAMERA_CAPTURE_STATUS: interval capture running (image_status 3) or idle, recording."""
    return mav.MAVLink_camera_capture_status_message(
        time_boot_ms=boot_ms,
        image_status=3 if interval_s else 0,
        video_status=1 if recording_ms is not None else 0,
        image_interval=interval_s or 0.0,
        recording_time_ms=recording_ms or 0,
        available_capacity=shutil.disk_usage(folder).free / _MIB,
        image_count=images,
        camera_device_id=0,
    )


def stream_information(mav: Any, number: int, count: int, stream: VideoStream) -> Any:
    return mav.MAVLink_video_stream_information_message(
        stream_id=number,
        count=count,
        type=stream.kind,
        flags=VIDEO_STREAM_STATUS_FLAGS_RUNNING,
        framerate=stream.fps,
        resolution_h=stream.width,
        resolution_v=stream.height,
        bitrate=0,
        rotation=0,
        hfov=0,
        name=stream.name.encode()[:32],
        uri=stream.uri.encode()[:160],
        encoding=stream.encoding,
        camera_device_id=0,
    )


def stream_status(mav: Any, number: int, stream: VideoStream, fps: float) -> Any:
    return mav.MAVLink_video_stream_status_message(
        stream_id=number,
        flags=VIDEO_STREAM_STATUS_FLAGS_RUNNING,
        framerate=fps or stream.fps,
        resolution_h=stream.width,
        resolution_v=stream.height,
        bitrate=0,
        rotation=0,
        hfov=0,
        camera_device_id=0,
    )


def attitude_quaternion(telemetry: Telemetry | None) -> list[float]:
    """The vehicle's attitude as MAVLink's [w, x, y, z]; NaN first when unknown."""
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


def image_captured(
    mav: Any, boot_ms: int, telemetry: Telemetry | None, index: int, path: Path
) -> Any:
    """CAMERA_IMAGE_CAPTURED where the frame's own telemetry says the drone was."""
    t = telemetry

    def scaled(value: float | None, scale: float) -> int:
        return 0 if value is None else round(value * scale)

    unix_ms = t.time_unix_ms if t is not None and t.time_unix_ms else int(time.time() * 1000)
    return mav.MAVLink_camera_image_captured_message(
        time_boot_ms=boot_ms,
        time_utc=unix_ms * 1000,
        camera_id=0,
        lat=scaled(t.lat_deg if t else None, 1e7),
        lon=scaled(t.lon_deg if t else None, 1e7),
        alt=scaled(t.alt_msl_m if t else None, 1000),
        relative_alt=scaled(t.alt_rel_m if t else None, 1000),
        q=attitude_quaternion(t),
        image_index=index,
        capture_result=1,
        file_url=path.resolve().as_uri()[:205].encode(),
    )
