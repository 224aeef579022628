"""core/websocket.py: the handshake and the client frame reader, fuzzed with hypothesis."""

import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode

from dronecam.core import websocket
from dronecam.core.websocket import (
    HandshakeError,
    MessageReader,
    WebSocketError,
    parse_request,
    request_end,
)

MAX_MESSAGE = 1024
GOOD_REQUEST = (
    b"GET /ws HTTP/1.1\r\nHost: 192.168.4.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def _feed(reader: MessageReader, data: bytes, chunk: int) -> list:
    events = []
    for start in range(0, len(data), chunk):
        events += reader.receive_data(data[start : start + chunk])
    return events


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=4000), st.integers(1, 64))
def test_random_bytes_give_events_or_a_close_code_and_never_grow_the_buffers(data, chunk):
    reader = MessageReader(MAX_MESSAGE)
    tracemalloc.start()
    try:
        events = _feed(reader, data, chunk)
    except WebSocketError as error:
        assert error.code in (1002, 1007, 1009)
        events = []
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < 64 * 1024 + 8 * len(data)
    assert len(reader._buffer) == MAX_MESSAGE + 14
    assert len(reader._message) == MAX_MESSAGE
    assert sum(len(payload) for _, payload in events if isinstance(payload, bytes | str)) <= len(
        data
    )


_messages = st.one_of(
    st.tuples(st.just(Opcode.TEXT), st.text(max_size=300).map(str.encode)),
    st.tuples(st.just(Opcode.BINARY), st.binary(max_size=300)),
)


def _expected(opcode, data):
    return (1, data.decode()) if opcode is Opcode.TEXT else (2, data)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_messages, st.integers(1, 4)), max_size=6), st.integers(1, 50))
def test_masked_fragmented_messages_with_pings_between_come_out_whole(messages, chunk):
    wire, expected = b"", []
    for (opcode, data), pieces in messages:
        step = max(1, -(-len(data) // pieces))
        parts = [data[i : i + step] for i in range(0, len(data), step)] or [b""]
        for index, part in enumerate(parts):
            kind = opcode if index == 0 else Opcode.CONT
            wire += Frame(kind, part, fin=index == len(parts) - 1).serialize(
                mask=True, extensions=[]
            )
            if index == 0 and len(parts) > 1:
                wire += Frame(Opcode.PING, b"hi").serialize(mask=True, extensions=[])
                expected.append((9, b"hi"))
        expected.append(_expected(opcode, data))
    assert _feed(MessageReader(MAX_MESSAGE), wire, chunk) == expected


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 70000])
def test_every_length_encoding_round_trips(size):
    data = b"\x07" * size
    wire = Frame(Opcode.BINARY, data).serialize(mask=True, extensions=[])
    assert MessageReader(70000).receive_data(wire) == [(2, data)]


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=6000))
def test_random_request_heads_are_answered_or_refused(data):
    try:
        end = request_end(data, min(len(data), websocket.MAX_REQUEST_BYTES))
        if end:
            parse_request(data[:end], "/ws")
    except HandshakeError as error:
        assert error.response.startswith(b"HTTP/1.1 4")
        assert len(error.response) < 300


@settings(max_examples=400, deadline=None)
@given(st.integers(0, len(GOOD_REQUEST) - 1), st.binary(min_size=1, max_size=8))
def test_damaged_upgrade_requests_never_crash_the_parser(position, junk):
    data = GOOD_REQUEST[:position] + junk + GOOD_REQUEST[position + len(junk) :]
    try:
        end = request_end(data, len(data))
        if end:
            assert parse_request(data[:end], "/ws")
    except HandshakeError as error:
        assert error.status in (400, 404, 405, 426, 431)


def test_every_prefix_of_a_valid_request_waits_for_more():
    for length in range(len(GOOD_REQUEST)):
        assert request_end(GOOD_REQUEST, length) == 0
    assert request_end(GOOD_REQUEST, len(GOOD_REQUEST)) == len(GOOD_REQUEST)


@pytest.mark.parametrize(
    "start",
    [
        b"\x16\x03\x01\x02\x00",  # a TLS ClientHello: a wss:// client
        b"GET /ws HTTP/1.0\r\n",
        b"GET /ws HTTP/1.1\n",  # bare LF
        b"GET /ws HTTP/1.1\r\nHost: x\nUpgrade",
        b"\x81\x84abcd",  # a WebSocket frame before any handshake
    ],
)
def test_bytes_that_cannot_start_an_http_1_1_request_are_refused_at_once(start):
    with pytest.raises(HandshakeError) as refused:
        request_end(start, len(start))
    assert refused.value.status == 400
    assert refused.value.response.startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_close_payload_fits_a_control_frame():
    payload = websocket.close_payload(1008, "é" * 200)
    assert len(payload) <= 125
    assert MessageReader().receive_data(
        Frame(Opcode.CLOSE, payload).serialize(mask=True, extensions=[])
    ) == [(8, (1008, payload[2:].decode()))]
