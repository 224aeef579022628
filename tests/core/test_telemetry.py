"""core/telemetry.py: the state per vehicle, its ageing, and the segment inside tagged JPEGs."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from pymavlink.dialects.v20 import common as v2

from dronecam.core import protocol, telemetry
from dronecam.core.mavlink import MavlinkReader

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


class _Sink:
    def write(self, data):
        pass


def feed(state, now_ms, *messages, sysid=1, compid=1):
    sender = v2.MAVLink(_Sink(), srcSystem=sysid, srcComponent=compid)
    reader = MavlinkReader(lambda msgid, s, c, payload: state.apply(msgid, s, c, payload, now_ms))
    for message in messages:
        reader.receive(bytes(message.pack(sender)))


def position(lat=473977420, lon=85455940, alt=500000, rel=20000, vx=0, vy=0, vz=0):
    return v2.MAVLink_global_position_int_message(0, lat, lon, alt, rel, vx, vy, vz, 9000)


def with_segment(segment, jpeg=JPEG):
    tagged = protocol.tag_jpeg(jpeg, 1, 1000)
    return bytes(tagged[:23]) + bytes(segment) + bytes(tagged[23:])


def test_a_relayed_frame_carries_the_upstreams_telemetry_behind_the_relays_tag():
    state = telemetry.TelemetryState()
    feed(state, 100, position())
    upstream = with_segment(state.encode_at(100))
    relayed = protocol.tag_jpeg(upstream, 9, 5000)  # what a relay's feed does
    assert [seq for seq, _ in protocol.read_tags(relayed)] == [9, 1]
    got = telemetry.read_telemetry(relayed)
    assert got is not None and abs(got.lat_deg - 47.397742) < 1e-7
    assert telemetry.telemetry_segment(relayed) == bytes(state.encode_at(100))


def test_a_silent_flight_controller_ages_then_disappears():
    state = telemetry.TelemetryState(max_age_ms=3000)
    feed(state, 1000, position(), v2.MAVLink_attitude_message(0, 0.1, 0.2, 0.3, 0, 0, 0))
    ages = [
        telemetry.read_telemetry(with_segment(state.encode_at(t))).age_ms
        for t in (1000, 2500, 4000)
    ]
    assert ages == [0, 1500, 3000]
    assert state.encode_at(4001) is None


def test_other_systems_and_components_are_ignored_and_counted():
    state = telemetry.TelemetryState()
    feed(state, 0, v2.MAVLink_heartbeat_message(2, 3, 0, 0, 4, 3))  # autopilot of system 1
    feed(state, 0, position(lat=10), sysid=2)  # another vehicle
    feed(state, 0, position(lat=20), compid=190)  # a ground station's component
    assert state.encode_at(0) is None and state.ignored == 2
    feed(state, 0, position(lat=30))
    assert telemetry.read_telemetry(with_segment(state.encode_at(0))).lat_deg == 30 / 1e7


def test_attitude_is_interpolated_across_the_yaw_wrap():
    state = telemetry.TelemetryState()
    feed(state, 0, v2.MAVLink_attitude_message(0, 0, 0, math.radians(170), 0, 0, 0))
    feed(state, 100, v2.MAVLink_attitude_message(0, 0, 0, math.radians(-170), 0, 0, 0))
    got = telemetry.read_telemetry(with_segment(state.encode_at(50)))
    assert abs(abs(got.yaw_deg) - 180) < 0.02, got.yaw_deg


def test_dead_reckoning_stops_after_a_second():
    state = telemetry.TelemetryState(max_age_ms=10000)
    feed(state, 0, position(vx=1000))  # 10 m/s north
    one = telemetry.read_telemetry(with_segment(state.encode_at(1000))).lat_deg
    five = telemetry.read_telemetry(with_segment(state.encode_at(5000))).lat_deg
    assert one == five and abs((one - 47.397742) * 111319.49 - 10) < 0.01


def test_fields_not_heard_are_none():
    state = telemetry.TelemetryState()
    feed(state, 0, position())
    got = telemetry.read_telemetry(with_segment(state.encode_at(0)))
    assert got.alt_rel_m == 20.0 and got.battery_v is None and got.roll_deg is None
    assert got.time_unix_ms is None
    state.set_wall_clock(1_700_000_000_000, 0)
    assert telemetry.read_telemetry(with_segment(state.encode_at(5))).time_unix_ms == (
        1_700_000_000_005
    )


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_read_as_telemetry_or_none(data):
    for candidate in (data, b"\xff\xd8" + data, b"\xff\xd8\xff\xfe" + data):
        result = telemetry.read_telemetry(candidate)
        assert result is None or isinstance(result, telemetry.Telemetry)


def test_the_original_clients_still_get_a_plain_jpeg():
    simplejpeg = __import__("simplejpeg")
    from dronecam.tools.media import synthetic_jpegs

    jpeg = synthetic_jpegs(1)[0]
    state = telemetry.TelemetryState()
    feed(state, 0, position())
    image = simplejpeg.decode_jpeg(with_segment(state.encode_at(0), jpeg))
    assert image.shape[2] == 3
