"""Writes tests/core/mavlink_vectors.json with pymavlink, never with dronecam.core.

pymavlink packs the MAVLink 1 and 2 bytes (signed ones too) and decodes them back into the
expected payloads; the expected telemetry is worked out here from pymavlink's decoded fields.
Run: python tests/core/make_mavlink_vectors.py tests/core/mavlink_vectors.json
"""

import json
import math
import sys

from pymavlink.dialects.v10 import common as v1
from pymavlink.dialects.v20 import common as v2

OURS = {0, 1, 2, 24, 30, 33, 74, 76, 147, 285}


class Out:
    def write(self, data):  # pymavlink wants a file; we only take the bytes of pack()
        pass


def link(dialect, sysid=1, compid=1, signed=False):
    mav = dialect.MAVLink(Out(), srcSystem=sysid, srcComponent=compid)
    if signed:
        mav.signing.secret_key = bytes(range(32))
        mav.signing.link_id = 1
        mav.signing.timestamp = 1000
        mav.signing.sign_outgoing = True
    return mav


def packed(mav, message):
    return bytes(message.pack(mav))


def full_payload(message):
    """The payload as the wire carries it before MAVLink 2 trims it: every field, in order."""
    values = []
    for name in message.ordered_fieldnames:
        value = getattr(message, name)
        values.extend(value if isinstance(value, list) else [value])
    return message.unpacker.pack(*values)


def decoded(data):
    """What pymavlink reads back from `data`: (msgid, sysid, compid, full payload hex)."""
    reader = link(v2)
    reader.robust_parsing = True
    found = []
    for message in reader.parse_buffer(data) or []:
        if message.get_type() == "BAD_DATA" or message.get_msgId() not in OURS:
            continue
        found.append(
            [
                message.get_msgId(),
                message.get_srcSystem(),
                message.get_srcComponent(),
                full_payload(message).hex(),
            ]
        )
    return found


fc = link(v2)
fc_v1 = link(v1)
gimbal = link(v2, compid=154)
gcs = link(v2, sysid=255, compid=190)
signed = link(v2, signed=True)

position = v2.MAVLink_global_position_int_message(
    time_boot_ms=123456, lat=473977420, lon=85455940, alt=488123, relative_alt=15234,
    vx=512, vy=-305, vz=-120, hdg=27150,
)  # fmt: skip
attitude = v2.MAVLink_attitude_message(123460, 0.1, -0.05, 2.6, 0.01, 0.02, 0.03)
hud = v2.MAVLink_vfr_hud_message(
    airspeed=12.5, groundspeed=6.02, heading=271, throttle=55, alt=488.1, climb=1.2
)
gps = v2.MAVLink_gps_raw_int_message(
    time_usec=1700000000000000, fix_type=3, lat=473977420, lon=85455940, alt=488000, eph=87,
    epv=120, vel=602, cog=27100, satellites_visible=14,
)  # fmt: skip
sys_status = v2.MAVLink_sys_status_message(
    onboard_control_sensors_present=0, onboard_control_sensors_enabled=0,
    onboard_control_sensors_health=0, load=500, voltage_battery=15870, current_battery=1234,
    battery_remaining=76, drop_rate_comm=0, errors_comm=0, errors_count1=0, errors_count2=0,
    errors_count3=0, errors_count4=0,
)  # fmt: skip
battery = v2.MAVLink_battery_status_message(
    id=0, battery_function=1, type=3, temperature=2500,
    voltages=[4100, 4110, 4090, 4105] + [65535] * 6, current_battery=1500,
    current_consumed=1, energy_consumed=2, battery_remaining=71,
)  # fmt: skip
quaternion = [math.cos(0.25), 0.0, math.sin(0.25), 0.0]  # pitch 0.5 rad
gimbal_status = v2.MAVLink_gimbal_device_attitude_status_message(
    target_system=0, target_component=0, time_boot_ms=123470, flags=12, q=quaternion,
    angular_velocity_x=0.0, angular_velocity_y=0.0, angular_velocity_z=0.0, failure_flags=0,
)  # fmt: skip
heartbeat = v2.MAVLink_heartbeat_message(
    type=2, autopilot=3, base_mode=81, custom_mode=0, system_status=4, mavlink_version=3
)
system_time = v2.MAVLink_system_time_message(time_unix_usec=1700000000123000, time_boot_ms=123000)
command = v2.MAVLink_command_long_message(
    target_system=1, target_component=100, command=512, confirmation=0,
    param1=259, param2=0, param3=0, param4=0, param5=0, param6=0, param7=0,
)  # fmt: skip
# Messages we do not decode: their framing is right, their CRC_EXTRA unknown to us.
servo = v2.MAVLink_servo_output_raw_message(1000, 0, *([1500] * 8))


def fix(t, lat, lon, alt, rel, vx, vz):
    return v2.MAVLink_global_position_int_message(t, lat, lon, alt, rel, vx, 0, vz, 0)


far_east = fix(9, -338688000, 1512093000, 5000, 4000, 0, 0)

good = b"".join(
    packed(fc, m)
    for m in (heartbeat, position, attitude, hud, gps, sys_status, battery, system_time, command)
) + packed(gimbal, gimbal_status)
v1_stream = b"".join(packed(fc_v1, m) for m in (
    v1.MAVLink_heartbeat_message(type=2, autopilot=3, base_mode=81, custom_mode=0, system_status=4, mavlink_version=3),
    v1.MAVLink_global_position_int_message(123456, 473977420, 85455940, 488123, 15234, 512, -305, -120, 27150),
    v1.MAVLink_attitude_message(123460, 0.1, -0.05, 2.6, 0.01, 0.02, 0.03),
))  # fmt: skip
bad_crc = bytearray(packed(fc, attitude))
bad_crc[-1] ^= 0x55
truncated = packed(fc, position)[:20]
unknown = packed(fc, servo)
signed_position = packed(signed, position)
garbage = bytes([0x00, 0x13, 0xFD, 0x01, 0xFE, 0x55, 0xAA] * 5)
streams = []


def stream(name, data, counters):
    streams.append(
        {"name": name, "hex": data.hex(), "messages": decoded(data), "counters": counters}
    )


stream(
    "good",
    good,
    {"received": 10, "bad_crc": 0, "unknown": 0, "garbage_bytes": 0},
)
stream("mavlink 1", v1_stream, {"received": 3, "bad_crc": 0, "unknown": 0, "garbage_bytes": 0})
stream("signed", signed_position + packed(fc, attitude), {"received": 2, "bad_crc": 0})
stream(
    "hostile",
    garbage + bytes(bad_crc) + truncated + unknown + good + garbage[:3],
    {"received": 10},
)
stream("far east", packed(fc, far_east), {"received": 1})

telemetry = {
    "stream": good.hex(),
    "expected": {
        "system_id": 1,
        "lat_deg": 47.397742,
        "lon_deg": 8.545594,
        "alt_msl_m": 488.123,
        "alt_rel_m": 15.234,
        "roll_deg": round(math.degrees(0.1) * 100) / 100,
        "pitch_deg": round(math.degrees(-0.05) * 100) / 100,
        "yaw_deg": round(math.degrees(2.6) * 100) / 100,
        # VFR_HUD came after GLOBAL_POSITION_INT: its speeds and heading win.
        "heading_deg": 271.0,
        "groundspeed_mps": 6.02,
        "airspeed_mps": 12.5,
        "climb_mps": 1.2,
        # BATTERY_STATUS came after SYS_STATUS: the sum of its cells.
        "battery_v": 16.405,
        "battery_a": 15.0,
        "battery_pct": 71,
        "gps_fix": 3,
        "satellites": 14,
        "hdop": 0.87,
        "gimbal_roll_deg": 0.0,
        "gimbal_pitch_deg": round(math.degrees(0.5) * 100) / 100,
        "gimbal_yaw_deg": 0.0,
        "gimbal_flags": 12,
    },
    # SYSTEM_TIME arrived at 1000 ms on the monotonic clock: unix time at 1000 + age.
    "heard_ms": 1000,
    "unix_ms_at_heard": 1700000000123,
}
far = {
    "stream": packed(fc, far_east).hex(),
    "lat_deg": -33.8688,
    "lon_deg": 151.2093,
}
# Two position fixes 200 ms apart, and the interpolated and extrapolated states between.
p1 = fix(0, 473977420, 85455940, 500000, 20000, 1000, -100)
p2 = fix(200, 473978320, 85455940, 500200, 20200, 1000, -100)
motion = {
    "fixes": [[1000, packed(fc, p1).hex()], [1200, packed(fc, p2).hex()]],
    # Halfway: the mean of the two fixes.
    "at_1100": [473977870, 85455940, 500100, 20100],
    # 300 ms past the second fix at 10 m/s north, 1 m/s up: 3 m north, 0.3 m up.
    "at_1500": [
        round(473978320 + 3.0 * 1e7 / 111319.49),
        85455940,
        500200 + 300,
        20200 + 300,
    ],
}

vectors = {
    "crc_extra": {
        str(msgid): [v2.mavlink_map[msgid].crc_extra, v2.mavlink_map[msgid].unpacker.size]
        for msgid in sorted(OURS)
    },
    "v1_lengths": {
        str(msgid): v1.mavlink_map[msgid].unpacker.size for msgid in sorted(OURS) if msgid < 256
    },
    "streams": streams,
    "telemetry": telemetry,
    "far_east": far,
    "motion": motion,
}

with open(sys.argv[1], "w") as file:
    json.dump(vectors, file, indent=1)
    file.write("\n")
print("wrote %d streams to %s" % (len(streams), sys.argv[1]))
