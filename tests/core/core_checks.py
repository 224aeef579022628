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


def run(vectors):
    from dronecam.core import protocol, websocket

    check_handshakes(vectors, websocket)
    check_frames(vectors, websocket)
    check_protocol(vectors, protocol)
    return len(vectors["requests"]) + len(vectors["client_frames"]) + len(vectors["messages"])


if __name__ == "__main__":
    sys.path.insert(0, sys.argv[1])
    with open(sys.argv[2]) as file:
        count = run(json.load(file))
    print("core checks passed: %d vectors" % count)
