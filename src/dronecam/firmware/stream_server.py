"""The device's WebSocket-only stream server on asyncio streams (docs/firmware.md, "How it works").

One task per client writes: replies first, then the newest frame, straight from its ring
slot (header and payload framed once for everyone, no copy). A second task per client reads
commands through core.websocket.MessageReader. Hub, feed and protocol are the host's own.
"""

import asyncio
import gc
import socket
from asyncio import core

from micropython import const

from dronecam.core import protocol
from dronecam.core.compat import ticks_ms
from dronecam.core.protocol import ProtocolError
from dronecam.core.status import ServerStatus, banner
from dronecam.core.websocket import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_TEXT,
    OP_PONG,
    HandshakeError,
    MessageReader,
    WebSocketError,
    accept_response,
    close_payload,
    frame,
    parse_request,
    request_end,
    MAX_REQUEST_BYTES,
)

MAX_OUTBOX_BYTES = const(16384)
_SOL_SOCKET = const(1)  # Linux values: the unix port's socket module does not name them
_SO_SNDBUF = const(7)
CLOSE_LINGER_MS = const(1000)


def log(message):
    print("[VideoStreamServer] " + message)


def _writable(sock):
    # What Stream.drain() waits on. Stream.write() would copy whatever the socket does not
    # take at once (most of a frame with lwIP's small send buffer), so frames bypass it.
    yield core._io_queue.queue_write(sock)


class Connection:
    """One client: handshake, then a writer loop (this task) and a reader task."""

    def __init__(self, server, stream):
        self.server = server
        self.stream = stream
        self.sock = stream.s
        peer = stream.get_extra_info("peername")
        self.peer = "%s:%s" % _address(peer) if peer else "?"
        self.wake = asyncio.Event()
        self.outbox = []
        self.outbox_bytes = 0
        self.subscription = None
        self.closing = False
        self.peer_done = asyncio.Event()
        self.writing_since_ms = 0
        self.task = None

    async def serve(self):
        server = self.server
        self.task = core.cur_task
        reader = None
        try:
            # No Nagle: a small reply followed by a frame would otherwise wait for the
            # client's delayed ACK (40 ms with Linux clients; see BENCHMARKS.md).
            self.sock.setsockopt(
                getattr(socket, "IPPROTO_TCP", 6), getattr(socket, "TCP_NODELAY", 1), 1)
            if server.send_buffer_bytes:
                self.sock.setsockopt(_SOL_SOCKET, _SO_SNDBUF, server.send_buffer_bytes)
        except OSError as error:
            log("socket option refused (%s); streaming anyway" % error)
        try:
            head = await asyncio.wait_for_ms(self._read_request(), server.handshake_timeout_ms)
            await self._write(accept_response(parse_request(head, protocol.WS_PATH)))
            status = server.status
            if status.is_full():
                line, error, code, reason = status.refusal(self.peer)
                log(line)
                self.send_text(error)
                self.close(code, reason)
            else:
                self.subscription = server.hub.subscribe(self.wake.set)
                server.connections.append(self)
                log(status.connected_line(self.peer))
                self.send_text(status.welcome_message())
            reader = asyncio.create_task(self._read_loop())
            await self._write_loop()
        except HandshakeError as error:  # not an upgrade to /ws: a short answer, then close
            try:
                await self._write(error.response)
            except OSError:
                pass
        except asyncio.TimeoutError:
            log("closing %s: no handshake within %d ms" % (self.peer, server.handshake_timeout_ms))
        except OSError:  # the client went away
            pass
        finally:
            self._finish(reader)

    async def _read_request(self):
        buffer = bytearray(MAX_REQUEST_BYTES)
        view = memoryview(buffer)
        length = 0
        while True:
            count = await self.stream.readinto(view[length:])
            if count == 0:
                raise OSError(0)  # the peer left before finishing its request
            length += count or 0
            end = request_end(buffer, length)
            if end:
                return view[:end]

    async def _write_loop(self):
        subscription = self.subscription
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.outbox:
                data = self.outbox.pop(0)
                self.outbox_bytes -= len(data)
                await self._write(data)
            if self.closing:
                try:  # the client answers our close frame, or we close the socket anyway
                    await asyncio.wait_for_ms(self.peer_done.wait(), CLOSE_LINGER_MS)
                except asyncio.TimeoutError:
                    pass
                return
            if self.peer_done.is_set():
                return
            taken = subscription.take() if subscription else None
            if taken is not None:
                taken.pins += 1
                try:
                    await self._write(taken.message, taken.length)
                finally:
                    taken.pins -= 1
                self.server.frames_sent += 1

    async def _write(self, buffer, length=-1):
        """Write all of buffer[:length] without copying it, waiting while the socket is full."""
        sock = self.sock
        length = len(buffer) if length < 0 else length
        offset = 0
        self.writing_since_ms = ticks_ms() or 1
        while offset < length:
            offset += sock.write(buffer, offset, length - offset) or 0
            if offset < length:
                await _writable(sock)
        self.writing_since_ms = 0

    async def _read_loop(self):
        messages = MessageReader(self.server.max_message_bytes)
        try:
            while True:
                space = messages.space()
                count = await self.stream.readinto(space) if len(space) else 0
                if not count:
                    if count == 0:
                        break
                    continue
                messages.received(count)
                event = messages.next_event()
                while event is not None:
                    if self._handle(event):
                        return
                    event = messages.next_event()
        except WebSocketError as error:
            log("closing %s: %s" % (self.peer, error.reason))
            self.close(error.code, error.reason)
        except OSError:
            pass
        finally:
            self.peer_done.set()
            self.wake.set()

    def _handle(self, event):
        """Act on one client event; True when the client has closed."""
        opcode, data = event
        if opcode == OP_TEXT:
            self._command(data)
        elif opcode == OP_BINARY:
            self.send_text(ProtocolError("binary_not_supported", "send commands as text").reply)
        elif opcode == OP_PING:
            self._queue(frame(OP_PONG, data))
        elif opcode == OP_CLOSE:
            code = data[0]
            self.close(protocol.CLOSE_NORMAL if code == protocol.CLOSE_NO_STATUS else code, "")
            return True
        return False

    def _command(self, text):
        subscription = self.subscription
        if subscription is None or self.closing:
            return
        reply, credit_changed = self.server.status.answer(text, subscription)
        if reply is not None:
            self.send_text(reply)
        if credit_changed:
            self.wake.set()

    # Queueing replies for the writer task.
    def send_text(self, text):
        self._queue(frame(OP_TEXT, text.encode()))

    def _queue(self, message):
        if self.closing:
            return
        if self.outbox_bytes + len(message) > MAX_OUTBOX_BYTES:
            log("closing %s: it sends commands but reads no replies" % self.peer)
            self.abort()
            return
        self.outbox.append(message)
        self.outbox_bytes += len(message)
        self.wake.set()

    def close(self, code, reason):
        """Start the close handshake: the writer sends the close frame after pending replies."""
        if not self.closing:
            self._queue(frame(OP_CLOSE, close_payload(code, reason)))
            self.closing = True

    def abort(self):
        if self.task is not None and self.task is not core.cur_task:
            self.task.cancel()

    def check_timeout(self, now_ms):
        status = self.server.status
        if self.subscription is None or not status.stream_timed_out(self.subscription, now_ms):
            return
        log(status.stream_timeout_line(self.peer))
        if self.writing_since_ms:
            self.abort()  # stuck mid-frame: no close frame can get through
        else:
            self.close(protocol.CLOSE_POLICY_VIOLATION, "stream timeout")

    def _finish(self, reader):
        server = self.server
        if reader is not None:
            reader.cancel()
        if self in server.connections:
            server.connections.remove(self)
        if self.subscription is not None:
            server.hub.unsubscribe(self.subscription)
            log(server.status.disconnected_line(self.peer, self.subscription))
            self.subscription = None
        self.sock.close()


def _address(peer):
    # The ESP32 port gives ("ip", port); the unix port a raw sockaddr, decoded here.
    if isinstance(peer, tuple):
        return peer[0], peer[1]
    try:
        family, address, port = socket.sockaddr(peer)[:3]
        return socket.inet_ntop(family, address), port
    except (AttributeError, TypeError, ValueError, OSError):
        return "?", ""


class StreamServer:
    """Wires the feed, the hub and the listening socket; heartbeats, timeouts, stats."""

    def __init__(self, feed, max_clients, stream_timeout_ms, heartbeat_interval_ms,
                 handshake_timeout_ms, max_message_bytes, ring=None, send_buffer_bytes=0):
        self.feed = feed
        self.hub = feed.hub
        self.ring = ring
        self.status = ServerStatus(feed, max_clients, heartbeat_interval_ms, stream_timeout_ms,
                                   self._device_fields)
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.handshake_timeout_ms = handshake_timeout_ms
        self.max_message_bytes = max_message_bytes
        self.send_buffer_bytes = send_buffer_bytes
        self.connections = []
        self.frames_sent = 0
        self.heap_used = 0
        self.allocated = 0
        self.port = 0

    async def start(self, host, port):
        """Listen on host:port; port 0 picks a free port (host runs; MicroPython has no getsockname)."""
        chosen = port
        for _ in range(50):
            if not port:
                chosen = 20000 + int.from_bytes(_random_bytes(2), "big") % 30000
            try:
                await asyncio.start_server(self._accept, host, chosen, backlog=8)
                break
            except OSError:
                if port:
                    raise
        self.port = chosen
        asyncio.create_task(self.feed.run())
        asyncio.create_task(self._housekeeping())
        for line in banner("ws://%s:%d%s" % (host, chosen, protocol.WS_PATH)):
            log(line)

    async def _accept(self, reader, writer):
        await Connection(self, reader).serve()

    async def _housekeeping(self):
        gc.collect()
        self.heap_used = gc.mem_alloc()
        while True:
            await asyncio.sleep_ms(self.heartbeat_interval_ms)
            # Garbage since the last collection: what this interval allocated (BENCHMARKS.md).
            self.allocated = gc.mem_alloc() - self.heap_used
            message = frame(OP_TEXT, self.status.heartbeat_message().encode())
            now_ms = ticks_ms()
            for connection in self.connections:
                connection._queue(message)
                connection.check_timeout(now_ms)
            gc.collect()  # short pauses now rather than one long one mid-frame
            self.heap_used = gc.mem_alloc()

    def _device_fields(self):
        """The device's own heartbeat and stats fields: traffic, heap, ring (BENCHMARKS.md)."""
        fields = {
            "frames_sent": self.frames_sent,
            "heap_used": self.heap_used,
            "heap_free": gc.mem_free(),
            "alloc_bytes": self.allocated,
        }
        if self.ring is not None:
            fields["ring_skipped"] = self.ring.skipped
        return fields


def _random_bytes(count):
    import os

    return os.urandom(count)
