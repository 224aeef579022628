"""One client of the device's stream server: handshake, writer loop, reader task (docs/firmware.md).

The writer (the connection's own task) sends replies first, then the newest frame straight
from its ring slot (framed once for everyone, no copy); a second task reads commands through
core.websocket.MessageReader. Every buffer is fixed per connection, the reply queue is bounded
in bytes and entries, and a MemoryError drops this connection, never a task the others need.
The server's housekeeping loop enforces its time limits through check_time_limits().
"""

import asyncio
import gc
import socket
from asyncio import core

from micropython import const

from dronecam.core import protocol
from dronecam.core.compat import ticks_diff, ticks_ms
from dronecam.core.protocol import ProtocolError
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
    MAX_CLIENT_HEADER_SIZE,
    MAX_REQUEST_BYTES,
)

MAX_OUTBOX_BYTES = const(8192)
# Replies pending: entries beyond the server's frame budget per tick (so a flood of tiny
# commands meets the rate limit, with its close frame, before this bound), and bytes.
SPARE_OUTBOX_ENTRIES = const(16)
REFUSED_MESSAGE_BYTES = const(125)  # a refused client is read only for its close frame
CLOSE_LINGER_MS = const(1000)
REFUSED_FULL = "refused: server full"
REFUSED_MEMORY = "refused: out of memory"
_SOL_SOCKET = const(1)  # Linux values: the unix port's socket module does not name them
_SO_SNDBUF = const(7)


def log(message, *args):
    try:
        print("[VideoStreamServer] " + (message % args if args else message))
    except MemoryError:  # the log must never be what takes a task down
        print("[VideoStreamServer] (out of memory while logging)")


def readable(sock):
    yield core._io_queue.queue_read(sock)


def writable(sock):
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
        await readable(self.sock)
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
                await writable(sock)
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
        """Act on one client event; True when the client has closed (or been dropped)."""
        if self.dropped:
            return True
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
        if (len(self.outbox) >= self.server.frame_budget + SPARE_OUTBOX_ENTRIES
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
