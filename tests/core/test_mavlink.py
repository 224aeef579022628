"""core/mavlink.py on pymavlink's bytes, under CPython and the real MicroPython binary; fuzzed."""

import json
import subprocess
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from mavlink_checks import run
from pymavlink.dialects.v20 import common as v2

from dronecam.core import mavlink
from dronecam.tools.firmware import tool
from support import seconds

HERE = Path(__file__).parent
VECTORS = HERE / "mavlink_vectors.json"
SRC = HERE.parent.parent / "src"


class _Sink:
    def write(self, data):
        pass


def test_cpython_passes_pymavlinks_vectors():
    assert run(json.loads(VECTORS.read_text())) > 20


def test_micropython_passes_the_same_vectors():
    result = subprocess.run(
        [tool("micropython"), str(HERE / "mavlink_checks.py"), str(SRC), str(VECTORS)],
        capture_output=True,
        text=True,
        timeout=seconds(60),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mavlink checks passed" in result.stdout


def test_tables_match_pymavlinks_dialect():
    for msgid, (crc_extra, length) in mavlink.MESSAGES.items():
        assert v2.mavlink_map[msgid].crc_extra == crc_extra
        assert v2.mavlink_map[msgid].unpacker.size == length


def _collect():
    found: list = []
    reader = mavlink.MavlinkReader(
        lambda msgid, sysid, compid, payload: found.append((msgid, sysid, compid, bytes(payload)))
    )
    return reader, found


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_are_taken_without_an_exception(data):
    reader, found = _collect()
    reader.receive(data)
    counters = reader.counters()
    assert counters["garbage_bytes"] <= len(data)
    assert len(found) == reader.received


@settings(max_examples=200, deadline=None)
@given(
    lat=st.integers(-900000000, 900000000),
    lon=st.integers(-1800000000, 1800000000),
    alt=st.integers(-(2**31), 2**31 - 1),
    hdg=st.integers(0, 65535),
    noise=st.binary(max_size=300),
    split=st.integers(1, 300),
)
def test_a_message_after_any_noise_is_read_as_pymavlink_packs_it(lat, lon, alt, hdg, noise, split):
    sender = v2.MAVLink(_Sink(), srcSystem=3, srcComponent=1)
    message = v2.MAVLink_global_position_int_message(1, lat, lon, alt, 0, 0, 0, 0, hdg)
    packet = bytes(message.pack(sender))
    # Noise can hold a start byte whose length (up to 280 bytes) swallows what follows: send
    # the packet again and again, as a flight controller streams it, and one must come through.
    data = noise + packet * (2 + mavlink.MAX_PACKET_BYTES // len(packet))
    reader, found = _collect()
    for start in range(0, len(data), split):
        reader.receive(data[start : start + split])
    assert found, reader.counters()
    msgid, sysid, compid, payload = found[-1]
    assert (msgid, sysid, compid) == (33, 3, 1)
    decoded = v2.MAVLink_global_position_int_message.unpacker.unpack(payload[:28])
    assert decoded[1:4] == (lat, lon, alt) and decoded[8] == hdg


def test_a_flood_of_bad_checksums_is_counted_and_the_good_message_survives():
    sender = v2.MAVLink(_Sink(), srcSystem=1, srcComponent=1)
    good = bytes(v2.MAVLink_attitude_message(1, 0.1, 0.2, 0.3, 0, 0, 0).pack(sender))
    bad = bytearray(good)
    bad[-2] ^= 0xFF
    reader, found = _collect()
    reader.receive(bytes(bad) * 5000 + good)
    assert reader.bad_crc == 5000 and len(found) == 1


def test_unsupported_incompatibility_flags_are_dropped_and_counted():
    sender = v2.MAVLink(_Sink(), srcSystem=1, srcComponent=1)
    packet = bytearray(v2.MAVLink_attitude_message(1, 0.1, 0.2, 0.3, 0, 0, 0).pack(sender))
    packet[2] = 0x02  # an incompatibility flag this reader does not know; fix the checksum
    crc = mavlink.checksum(packet, 1, len(packet) - 2, mavlink.MESSAGES[30][0])
    packet[-2:] = bytes([crc & 0xFF, crc >> 8])
    reader, found = _collect()
    reader.receive(bytes(packet))
    assert not found and reader.unsupported == 1


def test_a_false_start_byte_never_locks_a_repeating_stream_out():
    # Found by hypothesis: 0xFD before a stream whose payload holds 0xFE. Skipping unknown
    # "packets" by their claimed length landed on that 0xFE, packet after packet, forever.
    sender = v2.MAVLink(_Sink(), srcSystem=3, srcComponent=1)
    message = v2.MAVLink_global_position_int_message(1, 0, 0, -65537, 0, 0, 0, 0, 0)
    packet = bytes(message.pack(sender))
    assert b"\xfe" in packet[10:]
    reader, found = _collect()
    data = b"\xfd" + packet * 30
    for start in range(len(data)):
        reader.receive(data[start : start + 1])
    assert len(found) == 30, reader.counters()
