"""The device's WebSocket-only stream server on asyncio (docs/firmware.md, "How it works").

It listens, admits and refuses connections (connection.py serves each), and runs the
housekeeping loop: heartbeats, every time limit, storm reports. Hub, feed and protocol are the
host's own. The heap also holds the frame ring, so memory is bounded everywhere
(docs/firmware.md, "Memory"): at most MAX_CLIENTS streaming connections plus
SPARE_CONNECTIONS in a handshake or a refusal (the oldest of those makes room for a
newcomer), and refusals framed once at start.
"""

import asyncio
import gc
import socket

from micropython import const

from connection import REFUSED_FULL, REFUSED_MEMORY, Connection, readable, log

from dronecam.core import protocol
from dronecam.core.compat import ticks_diff, ticks_ms
from dronecam.core.status import ServerStatus, banner
from dronecam.core.websocket import (
    OP_CLOSE,
    OP_TEXT,
    MAX_FRAGMENTS,
    close_payload,
    frame,
    http_response,
)

SPARE_CONNECTIONS = const(4)  # handshakes and refusals in flight beyond MAX_CLIENTS
LISTEN_BACKLOG = const(8)
ACCEPT_RETRY_MS = const(100)
REPORT_INTERVAL_MS = const(10000)
_NO_DESCRIPTOR = (23, 24)  # ENFILE, EMFILE
# A client stuck this long writing a ring slot, when the camera finds every slot pinned, is
# dropped: else three clients that stop reading mid-frame freeze every other one for as long
# as the stream timeout.
SLOT_HOLD_MS = const(300)


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
            await readable(listener)
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
