"""The device's WebSocket-only stream server on asyncio (docs/firmware.md, "How it works").

One task per client writes: replies first, then the newest frame, straight from its ring
slot (header and payload framed once for everyone, no copy). A second task per client reads
commands through core.websocket.MessageReader. Hub, feed and protocol are the host's own.

The heap also holds the frame ring, so memory is bounded everywhere (docs/firmware.md,
"Memory"): at most MAX_CLIENTS streaming connections plus SPARE_CONNECTIONS in a handshake or
a refusal (the oldest of those makes room for a newcomer), fixed buffers per connection, a
reply queue bounded in bytes and entries, and every time limit enforced by one housekeeping
loop. A MemoryError drops the connection that hit it, never a task the others depend on.
"""

import asyncio
import gc
import socket
from asyncio import core

from micropython import const

from dronecam.core import protocol
from dronecam.core.compat import ticks_diff, ticks_ms
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
    http_response,
    parse_request,
    request_end,
    MAX_CLIENT_HEADER_SIZE,
    MAX_FRAGMENTS,
    MAX_REQUEST_BYTES,
)

MAX_OUTBOX_BYTES = const(8192)
MAX_OUTBOX_ENTRIES = const(16)
SPARE_CONNECTIONS = const(4)  # handshakes and refusals in flight beyond MAX_CLIENTS
REFUSED_MESSAGE_BYTES = const(125)  # a refused client is read only for its close frame
LISTEN_BACKLOG = const(8)
ACCEPT_RETRY_MS = const(100)
REPORT_INTERVAL_MS = const(10000)
_NO_DESCRIPTOR = (23, 24)  # ENFILE, EMFILE
CLOSE_LINGER_MS = const(1000)
# A client stuck this long writing a ring slot, when the camera finds every slot pinned, is
# dropped: else three clients that stop reading mid-frame freeze every other one for as long
# as the stream timeout.
SLOT_HOLD_MS = const(300)
REFUSED_FULL = "refused: server full"
REFUSED_MEMORY = "refused: out of memory"
_SOL_SOCKET = const(1)  # Linux values: the unix port's socket module does not name them
_SO_SNDBUF = const(7)


def log(message, *args):
    try:
        print("[VideoStreamServer] " + (message % args if args else message))
    except MemoryError:  # the log must never be what takes a task down
        print("[VideoStreamServer] (out of memory while logging)")


def _readable(sock):
    yield core._io_queue.queue_read(sock)


def _writable(sock):
    # What Stream.drain() waits on. Stream.write() would copy whatever the socket does not
    # take at once (most of a frame with lwIP's small send buffer), so frames bypass it.
    yield core._io_queue.queue_write(sock)


class Connection:
    """One client: handshake, then a writer loop (this task) and a reader task.

    The housekeeping loop enforces its time limits (check_time_limits); `drop()` ends it at
    once, from any task, and says why at most once.
    """

    def __init__(self, server, sock, peer):
        self.server = server
        self.sock = sock
        self.peer = peer
        self.wake = asyncio.Event()
        self.peer_done = asyncio.Event()
        self.outbox = []
        self.outbox_bytes = 0
        self.heartbeat = None  # the newest heartbeat not yet written: newest wins
        self.subscription = None
        self.upgraded = False
        self.closing = False
        self.dropped = False
        self.since_ms = ticks_ms()  # accepted at, then closing since
        self.writing_since_ms = 0
        self.pinning_since_ms = 0  # writing a ring slot since (it cannot be reused meanwhile)
        self.message_since_ms = 0  # a fragmented message from it open since
        self.frames_this_tick = 0
        self.task = None

    def name(self):
        return "%s:%s" % _address(self.peer) if self.peer else "?"

    async def serve(self):
        server = self.server
        reader = None
        try:
            self._set_socket_options()
            buffer = bytearray(max(MAX_REQUEST_BYTES,
                                   server.max_message_bytes + MAX_CLIENT_HEADER_SIZE))
            end, length = await self._read_request(buffer)
            await self._write(accept_response(parse_request(memoryview(buffer)[:end],
                                                            protocol.WS_PATH)))
            self.upgraded = True
            # Bytes sent in the same packet as the handshake (a pipelined ping) are read first.
            rest = bytes(memoryview(buffer)[end:length]) if length > end else b""
            if server.status.is_full():
                messages = self._refuse(REFUSED_FULL)
            else:
                try:  # frames are read into the request's buffer: one allocation less
                    messages = MessageReader(server.max_message_bytes, buffer)
                except MemoryError:  # no room for its buffers: refused, like a full server
                    server.out_of_memory()
                    messages = self._refuse(REFUSED_MEMORY)
            buffer = None
            if not self.closing:
                self.subscription = server.hub.subscribe(self.wake.set)
                log(server.status.connected_line(self.name()))
                self._queue(server.welcome())
            reader = asyncio.create_task(self._read_loop(messages, rest))
            await self._write_loop()
        except HandshakeError as error:  # not an upgrade to /ws: a short answer, then close
            try:
                await self._write(error.response)
            except OSError:
                pass
        except MemoryError:
            server.out_of_memory()
            if not self.upgraded:  # a short answer it can act on, framed at start
                try:
                    await self._write(server.busy_response)
                except (OSError, MemoryError):
                    pass
            self.drop("out of memory")
        except OSError:  # the client went away
            pass
        finally:
            self._finish(reader)

    def _set_socket_options(self):
        try:
            # No Nagle: a small reply followed by a frame would otherwise wait for the
            # client's delayed ACK (40 ms with Linux clients; see BENCHMARKS.md).
            self.sock.setsockopt(
                getattr(socket, "IPPROTO_TCP", 6), getattr(socket, "TCP_NODELAY", 1), 1)
            if self.server.send_buffer_bytes:
                self.sock.setsockopt(_SOL_SOCKET, _SO_SNDBUF, self.server.send_buffer_bytes)
        except OSError as error:
            log("socket option refused (%s); streaming anyway", error)

    async def _read_into(self, buffer):
        await _readable(self.sock)
        return self.sock.readinto(buffer)

    async def _read_request(self, buffer):
        """Read into `buffer` up to the end of the request head: (head size, bytes read)."""
        view = memoryview(buffer)
        length = 0
        while True:
            count = await self._read_into(view[length:MAX_REQUEST_BYTES])
            if count == 0:
                raise OSError(0)  # the peer left before finishing its request
            length += count or 0
            end = request_end(buffer, length)
            if end:
                return end, length

    async def _write_loop(self):
        subscription = self.subscription
        while not self.dropped:
            await self.wake.wait()
            self.wake.clear()
            if self.heartbeat is not None:
                heartbeat, self.heartbeat = self.heartbeat, None
                await self._write(heartbeat)
            while self.outbox and not self.dropped:
                data = self.outbox.pop(0)
                self.outbox_bytes -= len(data)
                await self._write(data)
            if self.closing:  # the client answers our close frame, or housekeeping drops it
                if not self.dropped:
                    await self.peer_done.wait()
                return
            if self.peer_done.is_set():
                return
            taken = subscription.take() if subscription else None
            if taken is not None:
                taken.pins += 1
                self.pinning_since_ms = ticks_ms() or 1
                try:
                    await self._write(taken.message, taken.length)
                finally:
                    taken.pins -= 1
                    self.pinning_since_ms = 0
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

    async def _read_loop(self, messages, rest):
        try:
            if rest:
                for event in messages.receive_data(rest):
                    if self._handle(event):
                        return
            rest = None
            while True:
                event = messages.next_event()
                while event is not None:
                    if self._handle(event):
                        return
                    if self.outbox:  # let the writer send the reply: a reading client
                        await asyncio.sleep_ms(0)  # never fills its queue in one burst
                    event = messages.next_event()
                if messages.in_message():
                    self.message_since_ms = self.message_since_ms or ticks_ms() or 1
                else:
                    self.message_since_ms = 0
                space = messages.space()
                count = await self._read_into(space) if len(space) else 0
                if not count:
                    if count == 0:
                        break
                    continue
                messages.received(count)
                while event is not None:
                    if self._handle(event):
                        return
                    event = messages.next_event()
        except WebSocketError as error:
            log("closing %s: %s", self.name(), error.reason)
            self.close(error.code, error.reason)
            await self._drain(messages)
        except MemoryError:
            self.drop("out of memory")
            self.server.out_of_memory()
        except OSError:
            pass
        finally:
            self.peer_done.set()
            self.wake.set()

    async def _drain(self, messages):
        """Read and forget until the client leaves (or housekeeping drops it after the linger):
        closing with its bytes unread would reset the connection, losing our close frame."""
        try:
            while await self._read_into(messages.discard()) != 0:
                pass
        except OSError:
            pass

    def _handle(self, event):
        """Act on one client event; True when the client has closed."""
        self.frames_this_tick += 1
        if self.frames_this_tick > self.server.frame_budget:
            raise WebSocketError(protocol.CLOSE_POLICY_VIOLATION,
                                 "more than %d messages a second" % self.server.max_messages_per_s)
        opcode, data = event
        if opcode == OP_TEXT:
            self._command(data)
        elif opcode == OP_BINARY:
            self.send_text(ProtocolError("binary_not_supported", "send commands as text").reply)
        elif opcode == OP_PING:
            if not self.closing:
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

    def _refuse(self, kind):
        """Send the prebuilt refusal of `kind` and close; a small reader for the close reply."""
        server = self.server
        if server.reports.first(kind):
            if kind == REFUSED_FULL:
                log(server.status.refusal(self.name())[0])
            else:
                log("refused %s: out of memory", self.name())
        error, close = server.refusals[kind]
        self._queue(error)
        self._close_with(close)
        return MessageReader(REFUSED_MESSAGE_BYTES)

    # Queueing replies for the writer task.
    def send_text(self, text):
        if not self.closing:
            self._queue(frame(OP_TEXT, text.encode()))

    def queue_heartbeat(self, message):
        if self.subscription is not None and not self.closing:
            self.heartbeat = message
            self.wake.set()

    def _queue(self, message):
        if self.closing:
            return
        if (len(self.outbox) >= MAX_OUTBOX_ENTRIES
                or self.outbox_bytes + len(message) > MAX_OUTBOX_BYTES):
            self.drop("it sends commands but reads no replies")
            return
        self.outbox.append(message)
        self.outbox_bytes += len(message)
        self.wake.set()

    def close(self, code, reason):
        """Start the close handshake: the writer sends the close frame after pending replies."""
        if not self.closing:
            try:
                message = frame(OP_CLOSE, close_payload(code, reason))
            except MemoryError:
                self.drop("out of memory")
                self.server.out_of_memory()
                return
            self._close_with(message)

    def _close_with(self, message):
        self._queue(message)
        if not self.closing:
            self.closing = True
            self.since_ms = ticks_ms()
            self.heartbeat = None

    def drop(self, reason=None):
        """Close the socket now, without a close frame; log `reason` (once) if given."""
        if self.dropped:
            return
        self.dropped = self.closing = True
        self.heartbeat = None
        self.outbox_bytes = 0
        self.outbox.clear()
        if self.task is not None and self.task is not core.cur_task:
            self.task.cancel()
        else:
            self.wake.set()
        if reason:
            log("closing %s: %s", self.name(), reason)

    def check_time_limits(self, now_ms):
        """Handshake, close linger and stream timeouts; called on every housekeeping tick."""
        server = self.server
        self.frames_this_tick = 0
        if self.dropped:
            return
        if self.closing:
            if ticks_diff(now_ms, self.since_ms) > CLOSE_LINGER_MS:
                self.drop()  # it never answered our close frame: close the socket anyway
            return
        if not self.upgraded:
            if ticks_diff(now_ms, self.since_ms) > server.handshake_timeout_ms:
                self.drop("no handshake within %d ms" % server.handshake_timeout_ms)
            return
        if self.message_since_ms and (
                ticks_diff(now_ms, self.message_since_ms) > server.handshake_timeout_ms):
            reason = "message not finished within %d ms" % server.handshake_timeout_ms
            log("closing %s: %s", self.name(), reason)
            self.close(protocol.CLOSE_POLICY_VIOLATION, reason)
            return
        status = server.status
        if self.subscription is None or not status.stream_timed_out(self.subscription, now_ms):
            return
        log(status.stream_timeout_line(self.name()))
        if self.writing_since_ms:
            self.drop()  # stuck mid-frame: no close frame can get through
        else:
            self.close(protocol.CLOSE_POLICY_VIOLATION, "stream timeout")

    def _finish(self, reader):
        server = self.server
        self.dropped = self.closing = True
        if reader is not None:
            reader.cancel()
        if self in server.connections:
            server.connections.remove(self)
        subscription, self.subscription = self.subscription, None
        if subscription is not None:
            server.hub.unsubscribe(subscription)
        self.sock.close()
        if subscription is not None:
            try:
                log(server.status.disconnected_line(self.name(), subscription))
            except MemoryError:
                gc.collect()


def _address(peer):
    # The ESP32 port gives ("ip", port); the unix port a raw sockaddr, decoded here.
    if isinstance(peer, tuple):
        return peer[0], peer[1]
    try:
        family, address, port = socket.sockaddr(peer)[:3]
        return socket.inet_ntop(family, address), port
    except (AttributeError, TypeError, ValueError, OSError):
        return "?", ""


class Reports:
    """Events that come in storms (refusals, evictions, failed accepts): one line, then a count.

    `first(kind)` is True for the first event of its kind since the last report; `flush()`,
    called every housekeeping tick, logs how many more there were at most every
    REPORT_INTERVAL_MS, so a storm that lasts hours costs two lines per kind per interval.
    """

    def __init__(self):
        self.counts = {}
        self.since_ms = ticks_ms()

    def first(self, kind):
        count = self.counts.get(kind, 0)
        self.counts[kind] = count + 1
        return not count

    def flush(self, now_ms):
        if ticks_diff(now_ms, self.since_ms) < REPORT_INTERVAL_MS:
            return
        for kind in self.counts:
            if self.counts[kind] > 1:
                log("%d more %s in %d s", self.counts[kind] - 1, kind,
                    ticks_diff(now_ms, self.since_ms) // 1000)
        self.counts.clear()
        self.since_ms = now_ms


def _refusal(error, code, reason):
    return frame(OP_TEXT, error.encode()), frame(OP_CLOSE, close_payload(code, reason))


def _listening_socket(host, port):
    sock = socket.socket()
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(socket.getaddrinfo(host, port)[0][-1])
        sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class StreamServer:
    """Wires the feed, the hub and the listening socket; heartbeats, timeouts, stats."""

    def __init__(self, feed, max_clients, stream_timeout_ms, heartbeat_interval_ms,
                 handshake_timeout_ms, max_message_bytes, ring=None, send_buffer_bytes=0,
                 max_messages_per_s=200):
        self.feed = feed
        self.hub = feed.hub
        self.ring = ring
        if ring is not None:
            ring.on_full = self._ring_full
        self.status = ServerStatus(feed, max_clients, heartbeat_interval_ms, stream_timeout_ms,
                                   self._device_fields)
        self.max_clients = max_clients
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.handshake_timeout_ms = handshake_timeout_ms
        self.max_message_bytes = max_message_bytes
        self.send_buffer_bytes = send_buffer_bytes
        self.max_messages_per_s = max_messages_per_s
        # Client frames allowed per housekeeping tick: a message's worth of fragments at least.
        self.frame_budget = max(2 * MAX_FRAGMENTS,
                                max_messages_per_s * heartbeat_interval_ms // 1000)
        self.connections = []  # every open one: in a handshake, streaming or closing
        self.reports = Reports()
        self.frames_sent = 0
        self.heap_used = 0
        self.allocated = 0
        self.memory_errors = 0
        self.port = 0
        self._welcome = None
        self._welcome_size = None
        # Framed once at start: refusing must not need memory, it is what a shortage calls for.
        self.busy_response = http_response(503, "out of memory, try again later\n")
        _, error, code, reason = self.status.refusal("")
        self.refusals = {
            REFUSED_FULL: _refusal(error, code, reason),
            REFUSED_MEMORY: _refusal(
                protocol.error_message("server_full", "server out of memory, try again later"),
                code, "out of memory"),
        }

    async def start(self, host, port):
        """Listen on host:port; port 0 picks a free port (host runs; MicroPython has no getsockname).

        Raises:
            OSError: the port is in use or the address is not this device's.
        """
        chosen = port
        for _ in range(50):
            if not port:
                chosen = 20000 + int.from_bytes(_random_bytes(2), "big") % 30000
            try:
                listener = _listening_socket(host, chosen)
                break
            except OSError:
                if port:
                    raise
        self.port = chosen
        self.welcome()
        asyncio.create_task(self._listen(listener))
        asyncio.create_task(self._run_feed())
        asyncio.create_task(self._housekeeping())
        for line in banner("ws://%s:%d%s" % (host, chosen, protocol.WS_PATH)):
            log(line)

    async def _listen(self, listener):
        while True:
            await _readable(listener)
            sock = None
            try:
                sock, peer = listener.accept()
                self._admit(sock, peer)
            except OSError as error:  # gone already, or no descriptor free: try again soon
                if sock is not None:
                    sock.close()
                if self.reports.first("failed accepts"):
                    reason = ("no file descriptor free" if error.errno in _NO_DESCRIPTOR
                              else "errno %d" % error.errno)
                    log("accept failed (%s); still listening", reason)
                await asyncio.sleep_ms(ACCEPT_RETRY_MS)
            except MemoryError:
                if sock is not None:
                    sock.close()
                self.out_of_memory()

    def _admit(self, sock, peer):
        sock.setblocking(False)
        live = 0
        for connection in self.connections:
            live += not connection.dropped
        if live >= self.max_clients + SPARE_CONNECTIONS:
            for connection in self.connections:
                if not connection.dropped and (connection.subscription is None
                                               or connection.closing):
                    if self.reports.first("connections closed to make room"):
                        log("%d connections at once: closing the oldest unfinished one, %s",
                            live, connection.name())
                    connection.drop()
                    break
            else:
                sock.close()
                return
        connection = Connection(self, sock, peer)
        connection.task = asyncio.create_task(connection.serve())
        self.connections.append(connection)

    def _ring_full(self):
        """The camera found every slot pinned: drop the client holding one longest, if stuck."""
        oldest = None
        for connection in self.connections:
            if connection.pinning_since_ms and not connection.dropped and (
                    oldest is None or ticks_diff(oldest.pinning_since_ms,
                                                 connection.pinning_since_ms) > 0):
                oldest = connection
        if oldest is None:
            return
        held_ms = ticks_diff(ticks_ms(), oldest.pinning_since_ms)
        if held_ms > SLOT_HOLD_MS:
            try:
                oldest.drop("held a frame slot %d ms while the camera had none free" % held_ms)
            except MemoryError:
                oldest.drop()
                self.out_of_memory()

    async def _run_feed(self):
        while True:
            try:
                await self.feed.run()
            except MemoryError:
                self.out_of_memory()
                await asyncio.sleep_ms(self.heartbeat_interval_ms)

    def out_of_memory(self):
        self.memory_errors += 1
        gc.collect()

    async def _housekeeping(self):
        gc.collect()
        self.heap_used = gc.mem_alloc()
        while True:
            await asyncio.sleep_ms(self.heartbeat_interval_ms)
            try:
                self._tick()
            except MemoryError:
                self.out_of_memory()
            except Exception as error:  # a bug here must not end heartbeats and time limits
                log("housekeeping failed (%s); going on", error)

    def _tick(self):
        # Garbage since the last collection: what this interval allocated (BENCHMARKS.md).
        self.allocated = gc.mem_alloc() - self.heap_used
        try:
            text = self.status.heartbeat_message()
            message = frame(OP_TEXT, text.encode())
            text = None
        except MemoryError:  # no heartbeat this time; the time limits below still hold
            message = None
            self.out_of_memory()
        now_ms = ticks_ms()
        for connection in self.connections:
            try:
                if message is not None:
                    connection.queue_heartbeat(message)
                connection.check_time_limits(now_ms)
            except MemoryError:
                connection.drop("out of memory")
                self.out_of_memory()
        self.reports.flush(now_ms)
        gc.collect()  # short pauses now rather than one long one mid-frame
        self.heap_used = gc.mem_alloc()

    def welcome(self):
        """The welcome message, framed once for every client (rebuilt if the camera's size changes)."""
        source = self.feed.source
        size = (getattr(source, "width", 0), getattr(source, "height", 0))
        if self._welcome is None or size != self._welcome_size:
            text = self.status.welcome_message()
            self._welcome = frame(OP_TEXT, text.encode())
            self._welcome_size = size
        return self._welcome

    def _device_fields(self):
        """The device's own heartbeat and stats fields: traffic, heap, ring (BENCHMARKS.md)."""
        fields = {
            "frames_sent": self.frames_sent,
            "heap_used": self.heap_used,
            "heap_free": gc.mem_free(),
            "alloc_bytes": self.allocated,
            "memory_errors": self.memory_errors,
        }
        if self.ring is not None:
            fields["ring_skipped"] = self.ring.skipped
        return fields


def _random_bytes(count):
    import os

    return os.urandom(count)
