"""outputs/h264_sei.py: the tag's SEI round-trips through any bytes, and parsing never fails."""

from hypothesis import given
from hypothesis import strategies as st

from dronecam.outputs import h264_sei

SPS = b"\x00\x00\x00\x01\x67\x64\x00\x1e\xac"
IDR = b"\x00\x00\x01\x65\x88\x84\x00\x00\x03\x00"


@given(st.binary(max_size=300))
def test_escape_round_trips_and_leaves_no_start_code(data: bytes):
    escaped = h264_sei.escape(data)
    assert h264_sei.unescape(escaped) == data
    for bad in (b"\x00\x00\x00", b"\x00\x00\x01", b"\x00\x00\x02"):
        assert bad not in escaped


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1))
def test_tag_is_inserted_before_the_first_slice_and_read_back(seq: int, capture_us: int):
    unit = h264_sei.insert_tag(SPS + IDR, seq, capture_us)
    assert unit.startswith(SPS) and unit.endswith(IDR)
    assert h264_sei.read_tag(unit) == (seq, capture_us)
    assert h264_sei.read_tags(unit + unit) == [(seq, capture_us)] * 2


@given(st.binary(max_size=500))
def test_reading_random_bytes_never_raises(data: bytes):
    h264_sei.read_tags(data)
    h264_sei.read_tags(b"\x00\x00\x01\x06" + data)


def test_other_user_data_is_not_a_tag():
    other = b"\x00\x00\x00\x01\x06\x05\x1d" + bytes(16) + bytes(13) + b"\x80"
    assert h264_sei.read_tag(other + IDR) is None
