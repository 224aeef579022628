"""The firmware under the real MicroPython unix port, against real WebSocket clients."""

import asyncio
import json
import random
import socket
import struct

import simplejpeg
import websockets
from websockets.exceptions import ConnectionClosed

from dronecam.core import protocol
from dronecam.core.websocket import OP_PING, OP_PONG
from dronecam.tools.wire import RawClient, check_handshake, client_frame, handshake_request
from support import seconds
from support_firmware import firmware_server
from support_hardening import MIN_FPS, Watcher


async def _text(ws) -> dict:
    """The next text message, as JSON (or {"text": ...} for plain text such as pong)."""
    while True:
        message = await asyncio.wait_for(ws.recv(), seconds(5))
        if isinstance(message, str):
            return json.loads(message) if message.startswith("{") else {"text": message}


async def _reply(ws, kind: str) -> dict:
    """The next JSON message of type `kind`, skipping frames and heartbeats."""
    while (message := await _text(ws)).get("type") != kind:
        pass
    return message


async def _frame(ws) -> bytes:
    while True:
        message = await asyncio.wait_for(ws.recv(), seconds(5))
        if isinstance(message, bytes):
            return message


async def _closed(ws) -> int | None:
    try:
        while True:
            await asyncio.wait_for(ws.recv(), seconds(5))
    except ConnectionClosed:
        return ws.close_code


async def test_welcome_then_tagged_jpegs_in_order():
    async with firmware_server() as fw, websockets.connect(fw.url) as ws:
        welcome = json.loads(await asyncio.wait_for(ws.recv(), seconds(5)))
        assert welcome["type"] == "welcome"
        assert welcome["message"] == protocol.WELCOME_MESSAGE
        assert (welcome["width"], welcome["height"]) == (640, 480)
        seqs = []
        for _ in range(10):
            jpeg = await _frame(ws)
            assert len(jpeg) <= protocol.MAX_FRAME_SIZE + protocol.TAG_SIZE
            assert simplejpeg.decode_jpeg_header(jpeg)[:2] == (480, 640)
            tag = protocol.read_tag(jpeg)
            assert tag is not None
            seqs.append(tag[0])
        assert seqs == sorted(seqs) and len(set(seqs)) == 10
        simplejpeg.decode_jpeg(jpeg)  # the last one decodes in full
    assert (
        "[VideoStreamServer] WebSocket-only video stream server started successfully!" in fw.log()
    )
    assert "WARNING: the WiFi password is the published default" in fw.log()


async def test_commands_and_control_frames():
    async with firmware_server() as fw, websockets.connect(fw.url) as ws:
        await _text(ws)
        await ws.send("ping")
        assert await _text(ws) == {"text": "pong"}
        await ws.send("get_stats")
        stats = await _text(ws)
        assert stats["type"] == "stats"
        assert {"clients", "fps", "frames", "sent", "dropped", "camera"} <= set(stats)
        assert stats["clients"] == 1
        await ws.send("clock")
        assert (await _text(ws))["type"] == "clock"
        await ws.send("jump")
        error = await _text(ws)
        assert (error["type"], error["error"]) == ("error", "unknown_command")
        await ws.send(b"\x00binary")
        assert (await _text(ws))["error"] == "binary_not_supported"
        latency = await asyncio.wait_for(await ws.ping(b"hello"), seconds(5))
        assert latency >= 0
        await ws.send(["get_", "stats"])  # a fragmented text message
        assert (await _text(ws))["type"] == "stats"
        heartbeat = await _text(ws)
        while heartbeat["type"] != "heartbeat":
            heartbeat = await _text(ws)
        assert heartbeat["clients"] == 1 and heartbeat["camera"] == "ok"
        await ws.close()
        assert ws.close_code == 1000


async def test_max_clients_refused_with_server_full():
    async with firmware_server(max_clients=2) as fw:
        async with websockets.connect(fw.url) as one, websockets.connect(fw.url) as two:
            await _text(one)
            await _text(two)
            async with websockets.connect(fw.url) as three:
                error = await _text(three)
                assert error["error"] == "server_full"
                assert await _closed(three) == protocol.CLOSE_TRY_AGAIN_LATER
            await two.close()
        await fw.wait_for_log("disconnected", seconds(5))
        async with websockets.connect(fw.url) as again:
            assert (await _text(again))["type"] == "welcome"


def _small_buffer_socket(url: str) -> socket.socket:
    """A client socket whose receive buffer holds about one frame, so it cannot hoard frames."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    return sock


async def test_slow_client_skips_to_newest_frame_while_others_keep_up():
    async with firmware_server() as fw:
        sock = _small_buffer_socket(fw.url)
        async with (
            websockets.connect(fw.url) as fast,
            websockets.connect(fw.url, sock=sock, max_queue=1) as slow,
        ):
            await _text(fast)
            await _text(slow)
            fast_seqs: list[int] = []

            async def read_fast() -> None:
                while True:
                    fast_seqs.append(protocol.read_tag(await _frame(fast))[0])

            reader = asyncio.create_task(read_fast())
            slow_seqs = []
            for _ in range(8):  # the slow client takes a frame about every 0.25 s
                slow_seqs.append(protocol.read_tag(await _frame(slow))[0])
                await asyncio.sleep(0.25)
            reader.cancel()
            await slow.send("get_stats")
            slow_stats = await _reply(slow, "stats")
        assert slow_stats["dropped"] > 0
        assert slow_seqs[-1] - slow_seqs[0] > 2 * len(slow_seqs)  # it skipped ahead
        # Meanwhile the fast client was not held back: it got (nearly) every frame published.
        published = fast_seqs[-1] - fast_seqs[0] + 1
        assert published >= slow_seqs[-1] - slow_seqs[0]
        assert len(fast_seqs) >= 0.8 * published


async def test_credit_window_bounds_unacknowledged_frames():
    async with firmware_server() as fw, websockets.connect(fw.url) as ws:

        async def sent() -> int:
            await ws.send("get_stats")
            return (await _reply(ws, "stats"))["sent"]

        await _text(ws)
        await ws.send("window 2")
        assert (await _reply(ws, "window"))["window"] == 2
        await asyncio.sleep(seconds(0.5))
        stalled = await sent()
        await asyncio.sleep(seconds(0.5))
        assert await sent() == stalled  # two frames out, none acknowledged: nothing more
        await ws.send("ack 2")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds(5)
        while (count := await sent()) < stalled + 2 and loop.time() < deadline:
            await asyncio.sleep(0.05)
        assert count == stalled + 2  # exactly the two credits returned
        await asyncio.sleep(seconds(0.5))
        assert await sent() == stalled + 2


async def test_stream_timeout_closes_a_client_that_takes_nothing():
    async with firmware_server(stream_timeout_ms=800, heartbeat_interval_ms=200) as fw:
        async with websockets.connect(fw.url) as ws:
            await _text(ws)
            await ws.send("window 1")
            assert await _closed(ws) == protocol.CLOSE_POLICY_VIOLATION
        await fw.wait_for_log("took no frame for 800 ms", seconds(5))


def _raw_connect(url: str) -> socket.socket:
    host, port = url.split("//")[1].split("/")[0].split(":")
    sock = socket.create_connection((host, int(port)), timeout=seconds(5))
    return sock


def _raw_handshake(sock: socket.socket) -> None:
    sock.sendall(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert b"101 Switching Protocols" in head
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head


def _read_until_close(sock: socket.socket) -> int:
    """Skip frames until the server's close frame; return its code."""
    while True:
        first, second = sock.recv(1)[0], sock.recv(1)[0]
        size = second & 0x7F
        if size == 126:
            size = struct.unpack(">H", _exactly(sock, 2))[0]
        elif size == 127:
            size = struct.unpack(">Q", _exactly(sock, 8))[0]
        payload = _exactly(sock, size)
        if first & 0x0F == 0x8:
            return struct.unpack(">H", payload[:2])[0]


def _exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        assert chunk, "connection closed early"
        data += chunk
    return data


async def test_protocol_violations_get_their_close_codes():
    cases = [
        (b"\x81\x04ping", 1002),  # unmasked client frame
        (b"\x81\xfe\x10\x01abcd", 1009),  # a 4097-byte text, over the 4096-byte limit
        (b"\x81\x82abcd" + bytes([0xFF ^ 0x61, 0xFE ^ 0x62]), 1007),  # invalid UTF-8
        (b"\x83\x80abcd", 1002),  # reserved opcode
    ]
    async with firmware_server() as fw:
        for data, code in cases:
            sock = await asyncio.to_thread(_raw_connect, fw.url)
            try:
                await asyncio.to_thread(_raw_handshake, sock)
                sock.sendall(data)
                assert await asyncio.to_thread(_read_until_close, sock) == code
            finally:
                sock.close()


async def test_plain_http_gets_a_short_answer_and_no_page():
    async with firmware_server(handshake_timeout_ms=500) as fw:

        def exchange(request: bytes) -> bytes:
            sock = _raw_connect(fw.url)
            with sock:
                sock.sendall(request)
                data = b""
                while chunk := sock.recv(4096):
                    data += chunk
                return data

        index = await asyncio.to_thread(exchange, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert index.startswith(b"HTTP/1.1 404 ") and len(index) < 300
        upgrade = await asyncio.to_thread(exchange, b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
        assert upgrade.startswith(b"HTTP/1.1 426 ")
        silent = await asyncio.to_thread(exchange, b"GET /ws HTTP/1.1\r\n")
        assert silent == b""  # no handshake within the timeout: closed
        await fw.wait_for_log("no handshake within 500 ms", seconds(5))


async def test_a_ping_sent_with_the_handshake_is_answered():
    async with firmware_server() as fw:
        client = await RawClient.open(fw.url)
        try:
            request, accept = handshake_request(fw.url)
            client.send(request + client_frame(OP_PING, b"pipelined"))  # one TCP packet
            check_handshake((await client.read_response())[1], accept)
            assert json.loads(await client.next_text())["type"] == "welcome"

            async def pong() -> bytes:
                while True:
                    opcode, payload = await client.read_frame()
                    if opcode == OP_PONG:
                        return payload

            assert await asyncio.wait_for(pong(), seconds(5)) == b"pipelined"
        finally:
            client.close()


async def test_requests_that_cannot_be_an_upgrade_are_answered_400_at_once():
    cases = {
        "HTTP/1.0 upgrade": None,  # a whole valid request but for the version
        "bare LF": b"GET /ws HTTP/1.1\nHost: x\nUpgrade: websocket\n",
        "TLS ClientHello": bytes.fromhex("1603010200010001fc0303") + bytes(32),
    }
    async with firmware_server(handshake_timeout_ms=5000) as fw:
        for name, data in cases.items():
            if data is None:
                data = handshake_request(fw.url)[0].replace(b" HTTP/1.1\r\n", b" HTTP/1.0\r\n", 1)
            client = await RawClient.open(fw.url)
            try:
                started = asyncio.get_running_loop().time()
                client.send(data)
                status, _ = await client.read_response()
                assert status == 400, (name, status)
                await client.wait_closed(seconds(1))  # not held for the 5 s handshake timeout
                assert asyncio.get_running_loop().time() - started < 1, name
            finally:
                client.close()


async def test_clients_stuck_mid_frame_do_not_freeze_the_others():
    """Four clients that stop reading pin ring slots; the camera must still find one free."""
    async with firmware_server(stream_timeout_ms=5000) as fw, Watcher(fw.url) as watcher:
        stuck = []
        try:
            for _ in range(4):  # each gets stuck on a later frame, so on another slot
                client = await RawClient.connect(fw.url, receive_buffer_bytes=4096)
                client.stop_reading()
                stuck.append(client)
                await asyncio.sleep(0.15)
            rates = [await watcher.fps(1.0) for _ in range(2)]  # well inside the 5 s timeout
        finally:
            for client in stuck:
                client.close()
    assert min(rates) >= MIN_FPS, rates
    assert "while the camera had none free" in fw.log()


async def test_camera_watchdog_reinitialises_a_stalled_camera():
    async with (
        firmware_server(heartbeat_interval_ms=200, env={"DRONECAM_CAMERA_STALL": "20:3000"}) as fw,
        websockets.connect(fw.url) as ws,
    ):
        states = []
        while not ("stalled" in states and states[-1] == "ok"):
            message = await _text(ws)
            if message["type"] == "heartbeat":
                states.append(message["camera"])
        await _frame(ws)
        await fw.wait_for_log("[Camera] stalled", seconds(5))
        await ws.send("get_stats")
        assert (await _reply(ws, "stats"))["camera_restarts"] >= 1


async def test_garbage_and_abrupt_disconnects_never_take_the_server_down():
    rng = random.Random(7)

    def abuse(url: str, upgrade: bool, payload: bytes) -> None:
        sock = _raw_connect(url)
        try:
            if upgrade:
                _raw_handshake(sock)
            sock.sendall(payload)
            sock.recv(100)  # whatever comes first (a frame, an answer or the close)
        except OSError:
            pass
        finally:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # a reset, not a clean close

    async with firmware_server(handshake_timeout_ms=500) as fw:
        for _ in range(3):  # 8 at a time: more than MAX_CLIENTS, all misbehaving
            payloads = [
                bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000))) for _ in range(8)
            ]
            await asyncio.gather(
                *(asyncio.to_thread(abuse, fw.url, i % 2 == 0, p) for i, p in enumerate(payloads))
            )
        async with websockets.connect(fw.url) as ws:
            assert (await _text(ws))["type"] == "welcome"
            await _frame(ws)
            await ws.send("get_stats")
            assert (await _reply(ws, "stats"))["clients"] == 1
        assert "Traceback" not in fw.log() and "Error" not in fw.log()
