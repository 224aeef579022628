"""The drone's state at each frame's capture, and the JPEG segment that carries it (§5.3).

`TelemetryState` takes the flight controller's MAVLink payloads (decoded by `core/mavlink.py`
on the device, by pymavlink on the host: the same bytes either way), keeps the newest samples
on the server's monotonic clock, and writes the telemetry segment for a frame: interpolated or
extrapolated to the capture time on the host (`encode_at`), the newest state with its age on
the device (`latest_segment`, which allocates nothing per frame). `read_telemetry` is what
clients use. docs/protocol.md §5.3 describes the segment byte by byte.
"""

import math
import struct

from . import mavlink
from .compat import const, ticks_diff

TELEMETRY_MAGIC = b"DCTM"
TELEMETRY_VERSION = const(1)
# COM marker, length, magic, version, flags, age_ms, time_unix_ms, lat, lon, alt_msl_mm,
# alt_rel_mm, roll, pitch, yaw (cdeg), heading (cdeg), ground speed, airspeed (cm/s), climb
# (cm/s), battery mV, battery cA, battery %, GPS fix, satellites, gimbal roll, pitch, yaw
# (cdeg), gimbal flags, system id, HDOP x100.
_FORMAT = ">2sH4sBHHQiiiihhhHHHhHhbBBhhhHBH"
TELEMETRY_SIZE = const(69)  # struct.calcsize(_FORMAT)
_SEGMENT_LENGTH = const(TELEMETRY_SIZE - 2)
_COM = b"\xff\xfe"
_FLAGS_OFFSET = const(9)
_AGE_OFFSET = const(11)
_TIME_OFFSET = const(13)

# Which groups of fields a segment carries (the `flags` field).
HAS_POSITION = const(0x001)  # lat, lon, alt_msl
HAS_RELATIVE_ALTITUDE = const(0x002)
HAS_ATTITUDE = const(0x004)  # roll, pitch, yaw
HAS_VELOCITY = const(0x008)  # ground speed, climb, heading
HAS_AIRSPEED = const(0x010)
HAS_BATTERY = const(0x020)  # voltage; current and remaining when known
HAS_GPS = const(0x040)  # fix type, satellites, HDOP
HAS_GIMBAL = const(0x080)
HAS_TIME = const(0x100)  # time_unix_ms
_GROUPS = (HAS_POSITION, HAS_RELATIVE_ALTITUDE, HAS_ATTITUDE, HAS_VELOCITY, HAS_AIRSPEED,
           HAS_BATTERY, HAS_GPS, HAS_GIMBAL)  # fmt: skip

MAV_COMP_ID_AUTOPILOT1 = const(1)
MAV_AUTOPILOT_INVALID = const(8)
MAX_AGE_MS = const(3000)  # a group not refreshed for this long is left out; then the segment
EXTRAPOLATE_MS = const(1000)  # the host dead-reckons a position at most this far ahead
_DEG_E7_PER_M = 1e7 / 111319.49  # degrees x 1e7 of latitude per metre
_UNKNOWN_U16 = const(0xFFFF)


class Telemetry:
    """The drone's state at one frame's capture, as a client reads it; absent groups are None.

    Units are in the names: degrees, metres, metres per second, volts, amperes, percent.
    `age_ms` is how long before the capture the newest telemetry message arrived.
    """

    def __init__(self, fields) -> None:
        flags = fields[4]
        self.flags: int = flags
        self.age_ms: int = fields[5]
        self.time_unix_ms: int | None = fields[6] if flags & HAS_TIME else None
        self.system_id: int = fields[27]
        self.lat_deg: float | None = None
        self.lon_deg: float | None = None
        self.alt_msl_m: float | None = None
        if flags & HAS_POSITION:
            self.lat_deg = fields[7] / 1e7
            self.lon_deg = fields[8] / 1e7
            self.alt_msl_m = fields[9] / 1000
        self.alt_rel_m: float | None = fields[10] / 1000 if flags & HAS_RELATIVE_ALTITUDE else None
        self.roll_deg: float | None = None
        self.pitch_deg: float | None = None
        self.yaw_deg: float | None = None
        if flags & HAS_ATTITUDE:
            self.roll_deg, self.pitch_deg, self.yaw_deg = (v / 100 for v in fields[11:14])
        self.heading_deg: float | None = None
        self.groundspeed_mps: float | None = None
        self.climb_mps: float | None = None
        if flags & HAS_VELOCITY:
            self.heading_deg = fields[14] / 100
            self.groundspeed_mps = fields[15] / 100
            self.climb_mps = fields[17] / 100
        self.airspeed_mps: float | None = fields[16] / 100 if flags & HAS_AIRSPEED else None
        self.battery_v: float | None = None
        self.battery_a: float | None = None
        self.battery_pct: int | None = None
        if flags & HAS_BATTERY:
            self.battery_v = fields[18] / 1000
            self.battery_a = fields[19] / 100 if fields[19] != -1 else None
            self.battery_pct = fields[20] if fields[20] >= 0 else None
        self.gps_fix: int | None = None
        self.satellites: int | None = None
        self.hdop: float | None = None
        if flags & HAS_GPS:
            self.gps_fix = fields[21]
            self.satellites = fields[22] if fields[22] != 255 else None
            self.hdop = fields[28] / 100 if fields[28] != _UNKNOWN_U16 else None
        self.gimbal_roll_deg: float | None = None
        self.gimbal_pitch_deg: float | None = None
        self.gimbal_yaw_deg: float | None = None
        self.gimbal_flags: int | None = None
        if flags & HAS_GIMBAL:
            self.gimbal_roll_deg, self.gimbal_pitch_deg, self.gimbal_yaw_deg = (
                v / 100 for v in fields[23:26]
            )
            self.gimbal_flags = fields[26]

    def as_dict(self) -> dict:
        """Every field, None for what the frame does not carry (for JSON and CSV)."""
        return {name: getattr(self, name) for name in FIELDS}

    def __repr__(self) -> str:
        return "<Telemetry %s>" % " ".join(
            "%s=%s" % (name, value) for name, value in self.as_dict().items() if value is not None
        )


FIELDS = ("time_unix_ms", "age_ms", "system_id", "lat_deg", "lon_deg", "alt_msl_m", "alt_rel_m",
          "roll_deg", "pitch_deg", "yaw_deg", "heading_deg", "groundspeed_mps", "airspeed_mps",
          "climb_mps", "battery_v", "battery_a", "battery_pct", "gps_fix", "satellites", "hdop",
          "gimbal_roll_deg", "gimbal_pitch_deg", "gimbal_yaw_deg", "gimbal_flags")  # fmt: skip


def _segment_fields(jpeg, offset):
    """The unpacked telemetry segment at `offset`, or None if it is another segment."""
    fields = struct.unpack_from(_FORMAT, jpeg, offset)
    if fields[1] != _SEGMENT_LENGTH or fields[2] != TELEMETRY_MAGIC or fields[3] != 1:
        return None
    return fields


def find_telemetry(jpeg) -> int:
    """The offset of the first telemetry segment among the segments after SOI, or -1.

    Frame tags and telemetry segments are COM segments right after SOI; a relay puts its
    own tag (and telemetry, if it has any) in front, so the first one found is the nearest
    hop's. APPn segments (a photo's EXIF, JFIF) before it are skipped.
    """
    size = len(jpeg)
    if size < 4 or jpeg[0] & 0xFF != 0xFF or jpeg[1] & 0xFF != 0xD8:
        return -1
    offset = 2
    for _ in range(16):
        if offset + 4 > size or jpeg[offset] & 0xFF != 0xFF:
            return -1
        marker = jpeg[offset + 1] & 0xFF
        if marker != 0xFE and not 0xE0 <= marker <= 0xEF:
            return -1
        length = (jpeg[offset + 2] & 0xFF) << 8 | jpeg[offset + 3] & 0xFF
        if (
            length == _SEGMENT_LENGTH
            and offset + TELEMETRY_SIZE <= size
            and _segment_fields(jpeg, offset) is not None
        ):
            return offset
        offset += 2 + length
    return -1


def read_telemetry(jpeg):
    """The Telemetry a tagged JPEG carries, or None (no segment: no flight controller heard)."""
    offset = find_telemetry(jpeg)
    if offset < 0:
        return None
    return Telemetry(_segment_fields(jpeg, offset))


def telemetry_segment(jpeg):
    """The raw segment bytes (for a relay that re-attaches them), or None."""
    offset = find_telemetry(jpeg)
    return None if offset < 0 else bytes(jpeg[offset : offset + TELEMETRY_SIZE])


def _clamp(value, low, high):
    return low if value < low else high if value > high else value


def _centidegrees(radians):
    return int(_clamp(round(math.degrees(radians) * 100), -18000, 18000))


def _wrap_pi(radians):
    while radians > math.pi:
        radians -= 2 * math.pi
    while radians < -math.pi:
        radians += 2 * math.pi
    return radians


class TelemetryState:
    """The newest state heard from one vehicle, on the server's monotonic clock (ms).

    Args:
        system_id: the vehicle's MAVLink system id; 0 takes the first autopilot heard.
        max_age_ms: a group of fields not refreshed for this long is left out of frames.
    """

    def __init__(self, system_id: int = 0, max_age_ms: int = MAX_AGE_MS) -> None:
        self.system_id = system_id
        self.max_age_ms = max_age_ms
        self.applied = 0  # messages used
        self.ignored = 0  # messages from another system or component
        self.heard_ms: int | None = None  # when the newest message used arrived
        self.unix_offset_ms: int | None = None  # unix time minus the monotonic clock
        self._fc_time = False  # unix_offset_ms came from the vehicle's SYSTEM_TIME
        self._updated_ms = [0] * len(_GROUPS)
        self._valid = 0  # the groups ever heard
        # Wire units, as in the segment.
        self.lat = self.lon = self.alt_mm = self.rel_alt_mm = 0
        self.vx = self.vy = self.vz = 0  # cm/s, north, east, down
        self.roll = self.pitch = self.yaw = 0.0  # radians
        self.heading_cd = self.groundspeed_cms = self.airspeed_cms = self.climb_cms = 0
        self.battery_mv = 0
        self.battery_ca = -1
        self.battery_pct = -1
        self.gps_fix = 0
        self.satellites = 255
        self.hdop = _UNKNOWN_U16
        self.gimbal_cd = [0, 0, 0]
        self.gimbal_flags = 0
        # The sample before the newest, for interpolation: (ms, lat, lon, alt, rel) and
        # (ms, roll, pitch, yaw).
        self._position = [None, None]
        self._attitude = [None, None]
        self._segment = bytearray(TELEMETRY_SIZE)
        self._segment_dirty = True
        self._time_added_ms = 0

    def set_wall_clock(self, unix_ms: int, now_ms: int) -> None:
        """Use this machine's clock for frame times until the vehicle's SYSTEM_TIME is heard."""
        if not self._fc_time:
            self.unix_offset_ms = unix_ms - now_ms

    def apply(self, msgid: int, sysid: int, compid: int, payload, now_ms: int) -> bool:
        """Take one MAVLink payload (full length, zero-padded); True if it changed the state."""
        if msgid == mavlink.HEARTBEAT:
            if not self.system_id and compid == MAV_COMP_ID_AUTOPILOT1:
                if payload[5] != MAV_AUTOPILOT_INVALID:
                    self.system_id = sysid
            return False
        if sysid != self.system_id:
            if self.system_id or compid != MAV_COMP_ID_AUTOPILOT1 or msgid not in _DECODERS:
                self.ignored += 1
                return False
            self.system_id = sysid  # no heartbeat yet: the first autopilot that speaks
        if compid != MAV_COMP_ID_AUTOPILOT1 and msgid != mavlink.GIMBAL_DEVICE_ATTITUDE_STATUS:
            self.ignored += 1
            return False
        decode = _DECODERS.get(msgid)
        if decode is None:
            return False
        groups = decode(self, payload, now_ms)
        if not groups:
            return False
        for index in range(len(_GROUPS)):
            if groups & _GROUPS[index]:
                self._updated_ms[index] = now_ms
        self._valid |= groups
        self.heard_ms = now_ms
        self.applied += 1
        self._segment_dirty = True
        return True

    def groups_at(self, now_ms: int) -> int:
        """The groups fresh enough to be carried at `now_ms`."""
        groups = 0
        for index in range(len(_GROUPS)):
            group = _GROUPS[index]
            if (
                self._valid & group
                and ticks_diff(now_ms, self._updated_ms[index]) <= self.max_age_ms
            ):
                groups |= group
        return groups

    def encode_at(self, capture_ms: int):
        """The segment for a frame captured at `capture_ms`, or None; interpolated (host)."""
        groups = self.groups_at(capture_ms)
        if not groups or self.heard_ms is None:
            return None
        lat, lon, alt, rel = self._position_at(capture_ms)
        roll, pitch, yaw = self._attitude_at(capture_ms)
        segment = bytearray(TELEMETRY_SIZE)
        age = _clamp(capture_ms - self.heard_ms, 0, _UNKNOWN_U16)
        unix = 0
        if self.unix_offset_ms is not None:
            groups |= HAS_TIME
            unix = capture_ms + self.unix_offset_ms
        self._pack(segment, groups, age, unix, lat, lon, alt, rel, roll, pitch, yaw)
        return segment

    def latest_segment(self, now_ms: int):
        """The newest state as a segment, aged to `now_ms` (ticks), or None (the device's way).

        The segment is packed once per change of state into a buffer this object owns; a
        frame only patches its flags, age and time, so nothing is allocated per frame. The
        buffer is reused: copy it (the frame builder does) before the next call.
        """
        heard = self.heard_ms
        groups = self.groups_at(now_ms)
        if not groups or heard is None:
            return None
        segment = self._segment
        if self._segment_dirty:
            unix = 0 if self.unix_offset_ms is None else heard + self.unix_offset_ms
            self._pack(segment, 0, 0, unix, self.lat, self.lon, self.alt_mm, self.rel_alt_mm,
                       self.roll, self.pitch, self.yaw)  # fmt: skip
            self._segment_dirty = False
            self._time_added_ms = 0
        if self.unix_offset_ms is not None:
            groups |= HAS_TIME
        age = ticks_diff(now_ms, heard)
        if age > _UNKNOWN_U16:
            age = _UNKNOWN_U16
        struct.pack_into(">HH", segment, _FLAGS_OFFSET, groups, age)
        if groups & HAS_TIME:
            # The time field holds the newest message's time plus the age last written.
            _add_big_endian(segment, _TIME_OFFSET + 7, age - self._time_added_ms)
            self._time_added_ms = age
        return segment

    def _pack(self, segment, groups, age, unix, lat, lon, alt, rel, roll, pitch, yaw) -> None:
        struct.pack_into(
            _FORMAT,
            segment,
            0,
            _COM,
            _SEGMENT_LENGTH,
            TELEMETRY_MAGIC,
            TELEMETRY_VERSION,
            groups,
            age,
            unix,
            lat,
            lon,
            alt,
            rel,
            _centidegrees(roll),
            _centidegrees(pitch),
            _centidegrees(yaw),
            self.heading_cd,
            self.groundspeed_cms,
            self.airspeed_cms,
            self.climb_cms,
            self.battery_mv,
            self.battery_ca,
            self.battery_pct,
            self.gps_fix,
            self.satellites,
            self.gimbal_cd[0],
            self.gimbal_cd[1],
            self.gimbal_cd[2],
            self.gimbal_flags,
            self.system_id & 0xFF,
            self.hdop,
        )

    def _position_at(self, t_ms):
        before, last = self._position
        if last is None:
            return self.lat, self.lon, self.alt_mm, self.rel_alt_mm
        if before is not None and before[0] <= t_ms < last[0]:
            share = (t_ms - before[0]) / (last[0] - before[0])
            return tuple(round(before[i] + (last[i] - before[i]) * share) for i in range(1, 5))
        if t_ms < last[0]:
            return last[1:] if before is None else before[1:]
        # Dead reckoning from the newest fix and its velocity, for a short while only.
        seconds = min(t_ms - last[0], EXTRAPOLATE_MS) / 1000
        lat = last[1] + self.vx / 100 * seconds * _DEG_E7_PER_M
        cos_lat = max(math.cos(math.radians(last[1] / 1e7)), 0.01)
        lon = last[2] + self.vy / 100 * seconds * _DEG_E7_PER_M / cos_lat
        down_mm = self.vz * 10 * seconds
        return (
            int(_clamp(round(lat), -900000000, 900000000)),
            int(_clamp(round(lon), -1800000000, 1800000000)),
            round(last[3] - down_mm),
            round(last[4] - down_mm),
        )

    def _attitude_at(self, t_ms):
        before, last = self._attitude
        if last is None:
            return self.roll, self.pitch, self.yaw
        if before is not None and before[0] <= t_ms < last[0]:
            share = (t_ms - before[0]) / (last[0] - before[0])
            return tuple(
                _wrap_pi(before[i] + _wrap_pi(last[i] - before[i]) * share) for i in range(1, 4)
            )
        return last[1:] if before is None or t_ms >= last[0] else before[1:]


def _add_big_endian(buffer, last: int, value: int) -> None:
    """Add a small `value` (may be negative) to the big-endian u64 ending at buffer[last].

    The device adds a frame's age to the unix time this way: no integer past 2^30 (which
    MicroPython would allocate on a 32-bit chip) is made per frame.
    """
    index = last
    while value and index >= last - 7:
        total = buffer[index] + value
        buffer[index] = total & 0xFF
        value = total >> 8  # the carry, or the borrow (arithmetic shift keeps the sign)
        index -= 1


def _global_position(state, payload, now_ms):
    _, lat, lon, alt, rel, vx, vy, vz, hdg = struct.unpack_from("<IiiiihhhH", payload, 0)
    state.lat, state.lon, state.alt_mm, state.rel_alt_mm = lat, lon, alt, rel
    state.vx, state.vy, state.vz = vx, vy, vz
    state.groundspeed_cms = int(math.sqrt(vx * vx + vy * vy))
    state.climb_cms = -vz
    if hdg != _UNKNOWN_U16:
        state.heading_cd = hdg
    samples = state._position
    samples[0] = samples[1]
    samples[1] = (now_ms, lat, lon, alt, rel)
    return HAS_POSITION | HAS_RELATIVE_ALTITUDE | HAS_VELOCITY


def _attitude(state, payload, now_ms):
    _, roll, pitch, yaw = struct.unpack_from("<Ifff", payload, 0)
    if roll != roll or pitch != pitch or yaw != yaw:  # NaN: not known
        return 0
    state.roll, state.pitch, state.yaw = roll, pitch, yaw
    samples = state._attitude
    samples[0] = samples[1]
    samples[1] = (now_ms, roll, pitch, yaw)
    return HAS_ATTITUDE


def _vfr_hud(state, payload, now_ms):
    airspeed, groundspeed, _, climb, heading = struct.unpack_from("<ffffh", payload, 0)
    state.airspeed_cms = int(_clamp(round(airspeed * 100), 0, 65535))
    state.groundspeed_cms = int(_clamp(round(groundspeed * 100), 0, 65535))
    state.climb_cms = int(_clamp(round(climb * 100), -32768, 32767))
    state.heading_cd = (heading % 360) * 100
    return HAS_VELOCITY | HAS_AIRSPEED


def _gps_raw(state, payload, now_ms):
    eph = struct.unpack_from("<H", payload, 20)[0]
    state.gps_fix = payload[28]
    state.satellites = payload[29]
    state.hdop = eph
    return HAS_GPS


def _sys_status(state, payload, now_ms):
    millivolts, centiamps = struct.unpack_from("<Hh", payload, 14)
    if millivolts == _UNKNOWN_U16:
        return 0
    state.battery_mv = millivolts
    state.battery_ca = centiamps
    state.battery_pct = struct.unpack_from("<b", payload, 30)[0]
    return HAS_BATTERY


def _battery_status(state, payload, now_ms):
    if payload[32] != 0:  # battery id: only the first battery
        return 0
    millivolts = 0
    for cell in struct.unpack_from("<10H", payload, 10):
        if cell != _UNKNOWN_U16:
            millivolts += cell
    if not millivolts:
        return 0
    state.battery_mv = min(millivolts, 65534)
    state.battery_ca = struct.unpack_from("<h", payload, 30)[0]
    state.battery_pct = struct.unpack_from("<b", payload, 35)[0]
    return HAS_BATTERY


def _gimbal(state, payload, now_ms):
    w, x, y, z = struct.unpack_from("<4f", payload, 4)
    if w != w:  # NaN: the gimbal does not know
        return 0
    roll = math.atan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = math.asin(_clamp(2 * (w * y - z * x), -1.0, 1.0))
    yaw = math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    state.gimbal_cd[0] = _centidegrees(roll)
    state.gimbal_cd[1] = _centidegrees(pitch)
    state.gimbal_cd[2] = _centidegrees(yaw)
    state.gimbal_flags = struct.unpack_from("<H", payload, 36)[0]
    return HAS_GIMBAL


def _system_time(state, payload, now_ms):
    unix_us = struct.unpack_from("<Q", payload, 0)[0]
    if unix_us:
        state.unix_offset_ms = unix_us // 1000 - now_ms
        state._fc_time = True
    return 0


_DECODERS = {
    mavlink.GLOBAL_POSITION_INT: _global_position,
    mavlink.ATTITUDE: _attitude,
    mavlink.VFR_HUD: _vfr_hud,
    mavlink.GPS_RAW_INT: _gps_raw,
    mavlink.SYS_STATUS: _sys_status,
    mavlink.BATTERY_STATUS: _battery_status,
    mavlink.GIMBAL_DEVICE_ATTITUDE_STATUS: _gimbal,
    mavlink.SYSTEM_TIME: _system_time,
}
