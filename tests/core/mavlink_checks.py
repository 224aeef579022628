"""Plain-assert checks of core/mavlink.py and core/telemetry.py on pymavlink's vectors.

CPython: test_mavlink_vectors.py imports run(). MicroPython:
micropython mavlink_checks.py SRC VECTORS.
"""

import binascii
import gc
import json
import sys


def _reader(mavlink):
    found = []

    def on_message(msgid, sysid, compid, payload):
        length = mavlink.MESSAGES[msgid][1]
        found.append([msgid, sysid, compid, binascii.hexlify(payload[0:length]).decode()])

    return mavlink.MavlinkReader(on_message), found


def check_tables(vectors, mavlink):
    for msgid, expected in vectors["crc_extra"].items():
        assert list(mavlink.MESSAGES[int(msgid)]) == expected, msgid
    for msgid, length in vectors["v1_lengths"].items():
        assert mavlink._V1_LENGTHS[int(msgid)] == length, msgid


def check_streams(vectors, mavlink):
    for case in vectors["streams"]:
        data = binascii.unhexlify(case["hex"])
        for split in (len(data), 1, 7, 64):  # whole, then in pieces of every size
            reader, found = _reader(mavlink)
            for start in range(0, len(data), split):
                reader.receive(data[start : start + split])
            assert found == case["messages"], (case["name"], split, found)
            counters = reader.counters()
            for name in case["counters"]:
                assert counters[name] == case["counters"][name], (case["name"], name, counters)
        if case["name"] == "hostile":
            assert reader.bad_crc >= 1 and reader.unknown >= 1 and reader.garbage_bytes > 0


def check_no_allocation_per_byte(vectors, mavlink):
    data = binascii.unhexlify(vectors["streams"][0]["hex"]) * 20
    reader = mavlink.MavlinkReader(lambda msgid, sysid, compid, payload: None)
    reader.receive(data)
    gc.collect()
    before = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
    reader.receive(data)
    if hasattr(gc, "mem_alloc"):
        # MicroPython: a few memoryview slices per buffer-full (about 560 bytes), nothing per
        # byte or per message: 7.6 kB and 200 messages cost 14 buffer-fulls.
        assert gc.mem_alloc() - before < 14 * 128, gc.mem_alloc() - before
    assert reader.received == 2 * 200


def _state_from(telemetry, mavlink, stream_hex, now_ms, state=None):
    state = state or telemetry.TelemetryState()

    def on_message(msgid, sysid, compid, payload):
        state.apply(msgid, sysid, compid, payload, now_ms)

    mavlink.MavlinkReader(on_message).receive(binascii.unhexlify(stream_hex))
    return state


def _close(a, b):
    if isinstance(b, float):
        return abs(a - b) < 0.011
    return a == b


def check_telemetry(vectors, mavlink, telemetry, protocol):
    case = vectors["telemetry"]
    heard = case["heard_ms"]
    state = _state_from(telemetry, mavlink, case["stream"], heard)
    jpeg = protocol.tag_jpeg(b"\xff\xd8\xff\xd9", 7, 5000)
    assert telemetry.read_telemetry(jpeg) is None
    # The device's way: the newest state, aged to the frame.
    assert state.latest_segment(heard + 10) is not None  # an earlier frame, patched over
    buffer = state.latest_segment(heard + 40)
    assert len(buffer) == telemetry.TELEMETRY_SIZE
    framed = bytes(jpeg[0:23]) + bytes(buffer) + bytes(jpeg[23:])
    got = telemetry.read_telemetry(framed)
    assert got is not None and got.age_ms == 40
    assert got.time_unix_ms == case["unix_ms_at_heard"] + 40, got.time_unix_ms
    for name, value in case["expected"].items():
        assert _close(getattr(got, name), value), (name, getattr(got, name), value)
    assert protocol.read_tag(framed) == (7, 5000)  # the frame tag is untouched
    # The host's way carries the same state at the instant of the newest fix (later, it
    # dead-reckons: check_motion).
    assert bytes(state.encode_at(heard)) == bytes(state.latest_segment(heard))
    # Aged past the limit, nothing is carried.
    assert state.latest_segment(heard + state.max_age_ms + 1) is None
    assert state.encode_at(heard + state.max_age_ms + 1) is None
    # Over 107 degrees of longitude, past MicroPython's small integers on a 32-bit chip.
    far = vectors["far_east"]
    far_state = _state_from(telemetry, mavlink, far["stream"], 10)
    buffer = far_state.latest_segment(10)
    got = telemetry.read_telemetry(b"\xff\xd8" + bytes(buffer) + b"\xff\xd9")
    assert _close(got.lat_deg, far["lat_deg"]) and _close(got.lon_deg, far["lon_deg"])


def check_motion(vectors, mavlink, telemetry):
    case = vectors["motion"]
    state = telemetry.TelemetryState()
    for now_ms, packet in case["fixes"]:
        _state_from(telemetry, mavlink, packet, now_ms, state)
    for at in ("at_1100", "at_1500"):
        segment = state.encode_at(int(at[3:]))
        got = telemetry.read_telemetry(b"\xff\xd8" + bytes(segment) + b"\xff\xd9")
        expected = case[at]
        assert abs(round(got.lat_deg * 1e7) - expected[0]) <= 1, (at, got.lat_deg)
        assert abs(round(got.lon_deg * 1e7) - expected[1]) <= 1, (at, got.lon_deg)
        assert abs(round(got.alt_msl_m * 1000) - expected[2]) <= 1, (at, got.alt_msl_m)
        assert abs(round(got.alt_rel_m * 1000) - expected[3]) <= 1, (at, got.alt_rel_m)
        assert got.age_ms == max(0, int(at[3:]) - 1200)


def check_device_frames_allocate_nothing(vectors, mavlink, telemetry):
    state = _state_from(telemetry, mavlink, vectors["telemetry"]["stream"], 1000)
    state.latest_segment(1001)
    if not hasattr(gc, "mem_alloc"):
        return
    gc.collect()
    before = gc.mem_alloc()
    for now in range(1002, 1102):
        state.latest_segment(now)
    assert gc.mem_alloc() - before == 0, gc.mem_alloc() - before
    got = telemetry.read_telemetry(b"\xff\xd8" + bytes(state.latest_segment(1101)) + b"\xff\xd9")
    assert got.age_ms == 101
    assert got.time_unix_ms == vectors["telemetry"]["unix_ms_at_heard"] + 101, got.time_unix_ms


def run(vectors):
    from dronecam.core import mavlink, protocol, telemetry

    check_tables(vectors, mavlink)
    check_streams(vectors, mavlink)
    check_no_allocation_per_byte(vectors, mavlink)
    check_telemetry(vectors, mavlink, telemetry, protocol)
    check_motion(vectors, mavlink, telemetry)
    check_device_frames_allocate_nothing(vectors, mavlink, telemetry)
    return sum(len(case["messages"]) for case in vectors["streams"])


if __name__ == "__main__":
    sys.path.insert(0, sys.argv[1])
    with open(sys.argv[2]) as file:
        count = run(json.load(file))
    print("mavlink checks passed: %d messages" % count)
