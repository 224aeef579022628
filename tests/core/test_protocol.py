"""core/protocol.py: messages, commands, the frame tag, JPEG checks."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dronecam.core import protocol
from dronecam.core.protocol import ProtocolError
from support import synthetic_jpegs


def test_messages_keep_the_original_fields_first():
    assert protocol.welcome_message() == (
        '{"type": "welcome", "message": "Connected to 30fps drone camera stream"}'
    )
    assert (
        protocol.heartbeat_message(28.54, 2) == '{"type": "heartbeat", "fps": 28.5, "clients": 2}'
    )
    stats = json.loads(protocol.stats_message(2, 29.1, 1450, {"dropped": 3}))
    assert list(stats)[:4] == ["type", "clients", "fps", "frames"]
    assert stats["dropped"] == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ping", ("ping", None)),
        ("get_stats", ("get_stats", None)),
        ("clock", ("clock", None)),
        (" ping\n", ("ping", None)),
        ("window 4", ("window", 4)),
        ("window 0", ("window", 0)),
        ("ack", ("ack", 1)),
        ("ack 3", ("ack", 3)),
    ],
)
def test_commands(text, expected):
    assert protocol.parse_command(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "pong",
        "PING",
        "window",
        "window -1",
        "window 65",
        "ack 0",
        "ack 1.5",
        "get_stats 1",
        "x" * 5000,
    ],
)
def test_bad_commands_raise_with_a_json_reply(text):
    with pytest.raises(ProtocolError) as error:
        protocol.parse_command(text)
    reply = json.loads(error.value.reply)
    assert reply["type"] == "error" and reply["message"]


@given(st.text(max_size=300))
def test_parse_command_accepts_or_raises_protocol_error(text):
    try:
        protocol.parse_command(text)
    except ProtocolError:
        pass


def test_tag_round_trip_keeps_a_valid_jpeg():
    import simplejpeg

    jpeg = synthetic_jpegs(1, 160, 128)[0]
    tagged = protocol.tag_jpeg(jpeg, 0x1_0000_0005, 123_456_789_012)
    assert len(tagged) == len(jpeg) + protocol.TAG_SIZE
    assert protocol.read_tag(tagged) == (5, 123_456_789_012)  # seq wraps at 32 bits
    assert simplejpeg.decode_jpeg(bytes(tagged)).shape == (128, 160, 3)
    assert protocol.read_tag(jpeg) is None


@given(st.binary(max_size=64))
def test_read_tag_never_raises(data):
    protocol.read_tag(data)


def test_check_jpeg():
    jpeg = synthetic_jpegs(1, 160, 128)[0]
    assert protocol.check_jpeg(jpeg) is None
    assert protocol.check_jpeg(jpeg + b"\x00" * 16) is None  # camera padding after EOI
    assert protocol.check_jpeg(jpeg[: len(jpeg) // 2]) == "truncated"
    assert protocol.check_jpeg(b"GIF89a" + jpeg) == "corrupt"
    assert protocol.check_jpeg(jpeg, max_bytes=len(jpeg) - 1) == "oversized"


def test_quality_percent_maps_the_ov2640_scale():
    assert protocol.quality_percent(0) == 100
    assert protocol.quality_percent(63) == 0
    assert protocol.quality_percent(12) == 81
    with pytest.raises(ValueError):
        protocol.quality_percent(64)
