"""Plain-assert checks of core/ on the shared golden vectors, for CPython and MicroPython alike.

CPython: test_core_vectors.py imports run(). MicroPython: micropython core_checks.py SRC VECTORS.
"""

import binascii
import json
import sys


def _events(events):
    """Events as the vectors spell them: text as is, bytes as hex, close as [code, reason]."""
    shown = []
    for opcode, data in events:
        if opcode == 8:
            shown.append([opcode, [data[0], data[1]]])
        elif opcode == 1:
            shown.append([opcode, data])
        else:
            shown.append([opcode, binascii.hexlify(data).decode()])
    return shown


def check_handshakes(vectors, websocket):
    for key, accept in vectors["accept"]:
        assert websocket.accept_key(key) == accept, key
    for case in vectors["requests"]:
        data = case["request"].encode()
        status, accept = 101, None
        try:
            end = websocket.request_end(data, min(len(data), websocket.MAX_REQUEST_BYTES))
            assert end, case["request"]
            accept = websocket.parse_request(data[:end], "/ws")
        except websocket.HandshakeError as error:
            status = error.status
            assert error.response.startswith(b"HTTP/1.1 %d " % status)
        assert status == case["status"], (case["request"][:60], status)
        if accept is not None:
            assert accept == case["accept"]
            response = websocket.accept_response(accept)
            assert response.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")


def check_frames(vectors, websocket):
    for opcode, size, expected in vectors["server_headers"]:
        assert binascii.hexlify(websocket.frame_header(opcode, size)).decode() == expected
    for case in vectors["client_frames"]:
        data = binascii.unhexlify(case["hex"])
        for split in (len(data), 1, 7):  # whole, then in small pieces
            reader = websocket.MessageReader(case["max"])
            events, code = [], None
            try:
                for start in range(0, len(data), split):
                    events += reader.receive_data(data[start : start + split])
            except websocket.WebSocketError as error:
                code = error.code
            assert code == case["error"], (case["hex"][:40], code)
            if code is None:
                assert _events(events) == case["events"], (case["hex"][:40], events)


def check_protocol(vectors, protocol):
    builders = {
        "welcome": protocol.welcome_message,
        "heartbeat": protocol.heartbeat_message,
        "stats": protocol.stats_message,
        "error": protocol.error_message,
        "clock": protocol.clock_message,
        "window": protocol.window_message,
    }
    for name, args, extra, text in vectors["messages"]:
        if extra is not None:
            args = list(args)
            args.append(extra)
        assert builders[name](*args) == text, (name, builders[name](*args))
    for text, expected in vectors["commands"]:
        try:
            result = list(protocol.parse_command(text))
        except protocol.ProtocolError as error:
            result = error.code
        assert result == expected, (text[:20], result)
    for case in vectors["tags"]:
        jpeg = binascii.unhexlify(case["jpeg"])
        tagged = protocol.tag_jpeg(jpeg, case["seq"], case["capture_us"])
        assert binascii.hexlify(tagged).decode() == case["tagged"]
        assert list(protocol.read_tag(tagged)) == [case["seq"], case["capture_us"]]
        assert protocol.read_tag(jpeg) is None
    for ov2640, percent in vectors["quality"]:
        assert protocol.quality_percent(ov2640) == percent
        assert 63 - percent * 63 // 100 == ov2640  # the camera module's own mapping back
    for jpeg, reason in vectors["jpegs"]:
        assert protocol.check_jpeg(binascii.unhexlify(jpeg)) == reason
    # The welcome names the camera's real rate, in the seed's words at 30 (§2).
    assert '"Connected to 15fps drone camera stream"' in protocol.welcome_message({"fps": 15})
    assert '"Connected to 30fps drone camera stream"' in protocol.welcome_message({"fps": 30.0})
    assert '"Connected to 30fps drone camera stream"' in protocol.welcome_message()
    # The frame limit follows the frame size: the device's 100000 at VGA (§1).
    assert protocol.frame_bytes_limit(640, 480) == protocol.MAX_FRAME_SIZE
    assert protocol.frame_bytes_limit(320, 240) == protocol.MAX_FRAME_SIZE
    assert protocol.frame_bytes_limit(2560, 1440) == 1200000
    assert protocol.frame_bytes_limit(640, 480, 0) == 400000
    assert protocol.frame_bytes_limit(8192, 8192, 0) == protocol.MAX_FRAME_BYTES_CEILING


JPEG = b"\xff\xd8jpeg\xff\xd9"


def check_hub(hub_module, protocol, ticks_ms):
    """The hub numbers and frames; the stream-timeout rule judges only a waiting frame."""
    hub = hub_module.Hub()
    subscription = hub.subscribe(lambda: None)
    frame = hub.publish(JPEG, 500)
    assert frame.seq == 1 and hub.latest is frame
    assert protocol.read_tag(frame.jpeg()) == (1, 500)
    full = hub_module.Hub(lambda jpeg, seq, capture_us, segment: None)
    assert full.publish(JPEG, 1) is None and full.frames_published == 0
    later = ticks_ms() + 10000
    assert subscription.take() is frame
    assert not subscription.stream_timed_out(later, 100)  # nothing newer: a stalled camera
    assert not subscription.stream_timed_out(later, 100)
    hub.publish(JPEG, 600)
    assert not subscription.stream_timed_out(later, 100)  # first seen waiting: one more check
    assert subscription.stream_timed_out(later, 100)
    assert not subscription.stream_timed_out(ticks_ms(), 5000)  # waiting, but not for long
    subscription.take()
    hub.publish(JPEG, 700)
    assert not subscription.stream_timed_out(later, 100)  # taking again resets the rule


class _Camera:
    name = "synthetic"
    width = 640
    height = 480
    fps = 0


def check_status(status_module, source_module, hub_module, protocol):
    """Welcome, heartbeat, stats, refusal, commands and banner: the text both servers send."""
    feed = source_module.Feed(_Camera(), hub_module.Hub(), log=lambda line: None)
    status = status_module.ServerStatus(feed, 2, 1000, 5000, lambda: {"heap_free": 7})
    welcome = json.loads(status.welcome_message())
    assert welcome["message"] == protocol.WELCOME_MESSAGE and welcome["source"] == "synthetic"
    assert welcome["max_clients"] == 2 and welcome["heartbeat_ms"] == 1000
    assert welcome["width"] == 640 and "fps" not in welcome
    first = feed.hub.subscribe(lambda: None)
    feed.hub.publish(JPEG, 1)
    first.take()
    heartbeat = json.loads(status.heartbeat_message())
    assert heartbeat["clients"] == 1 and heartbeat["frames"] == 1 and heartbeat["heap_free"] == 7
    assert heartbeat["camera"] == protocol.CAMERA_STARTING and heartbeat["max_clients"] == 2
    stats = json.loads(status.stats_message(first))
    assert stats["type"] == "stats" and stats["frames"] == 1 and stats["sent"] == 1
    assert stats["dropped"] == 0 and stats["window"] == 0 and stats["heap_free"] == 7
    assert status.answer("ping", first) == ("pong", False)
    assert status.answer("window 2", first) == (protocol.window_message(2), True)
    assert json.loads(status.answer("get_stats", first)[0])["window"] == 2
    assert json.loads(status.answer("dance", first)[0])["error"] == "unknown_command"
    assert not status.is_full()
    feed.hub.subscribe(lambda: None)
    assert status.is_full()
    line, error, code, reason = status.refusal("1.2.3.4:5")
    assert line == "refused 1.2.3.4:5: server full (2 clients)"
    assert json.loads(error)["error"] == "server_full"
    assert code == protocol.CLOSE_TRY_AGAIN_LATER and reason == "server full (2 clients)"
    assert status.connected_line("p") == "client p connected, 2 of 2"
    assert status.disconnected_line("p", first) == (
        "client p disconnected (1 frames sent, 0 dropped), 2 connected"
    )
    assert status.stream_timeout_line("p") == "closing p: took no frame for 5000 ms"
    lines = status_module.banner("ws://h:1/ws", False, (), ["note"])
    assert lines[0] == "WebSocket-only video stream server started successfully!"
    assert lines[1:] == [
        "WebSocket endpoint: ws://h:1/ws",
        "Connect directly to WebSocket - no HTTP interface",
        "note",
    ]


def check_clock(clock):
    """The offset comes from the round trip with the least delay, halfway through it."""
    offset = clock.ClockOffset()
    assert offset.offset_us is None
    offset.add(100, 500, 10_000)
    offset.add(1000, 1100, 11_000)  # faster: wins
    offset.add(2000, 2900, 0)
    assert offset.offset_us == 11_000 - 1050 and offset.round_trip_us == 100
    offset.received(5)  # no request in flight
    assert offset.offset_us == 9950
    offset.sent()
    start = clock.now_us()
    offset.received(start)
    assert offset.sent_us is None and offset.round_trip_us >= 0


def run(vectors):
    from dronecam.core import clock, hub, protocol, source, status, websocket
    from dronecam.core.compat import ticks_ms

    check_handshakes(vectors, websocket)
    check_frames(vectors, websocket)
    check_protocol(vectors, protocol)
    check_hub(hub, protocol, ticks_ms)
    check_status(status, source, hub, protocol)
    check_clock(clock)
    return len(vectors["requests"]) + len(vectors["client_frames"]) + len(vectors["messages"])


if __name__ == "__main__":
    sys.path.insert(0, sys.argv[1])
    with open(sys.argv[2]) as file:
        count = run(json.load(file))
    print("core checks passed: %d vectors" % count)
