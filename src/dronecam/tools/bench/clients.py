"""The benchmark's clients: lean raw-socket WebSocket readers that validate every frame.

They cost as little as a client can (one buffer append and a header parse per frame, no
per-frame allocation beyond the read itself), so that client CPU does not hide server limits.
A normal client reads everything (slow.py has the slow viewer); `run_clients` is the body of
one client process.
"""

from __future__ import annotations

import asyncio
import json
import struct
import time
from array import array
from typing import Any, cast
from urllib.parse import urlsplit

from ...core import protocol
from ...core.clock import ClockOffset, now_us
from ..wire import check_handshake, handshake_request, masked_pong, masked_text

CONNECT_CONCURRENCY = 64
CLOCK_PROBES = 20


class Window:
    """The measurement window of one client process, set by the bench once all are connected."""

    def __init__(self) -> None:
        self.open = False
        self.closed = False
        self.latencies = array("q")  # receive time minus capture time, local minus server clock
        self.clock = ClockOffset()


class LeanClient(asyncio.Protocol):
    """One normal client: reads every frame, checks it, counts frames, gaps and bytes."""

    def __init__(self, url: str, window: Window) -> None:
        self.request, self.accept = handshake_request(url)
        self.window = window
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.handshaken = False
        self.clock_sent_us = 0
        self.last_seq = 0
        self.first_seq = 0
        self.frames = 0
        self.frames_total = 0
        self.dropped = 0
        self.bytes = 0
        self.bad = 0
        self.error = ""
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(self.error or "closed during handshake"))

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.handshaken:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            try:
                check_handshake(bytes(buffer[: end + 4]), self.accept)
            except ConnectionError as error:
                self.error = str(error)
                assert self.transport is not None
                self.transport.close()
                return
            del buffer[: end + 4]
            self.handshaken = True
        position = self._parse(buffer)
        if position:
            del buffer[:position]

    def _parse(self, buffer: bytearray) -> int:
        position = 0
        size = len(buffer)
        while size - position >= 2:
            second = buffer[position + 1]
            length = second & 0x7F
            start = position + 2
            if length == 126:
                if size - position < 4:
                    break
                length = (buffer[position + 2] << 8) | buffer[position + 3]
                start = position + 4
            elif length == 127:
                if size - position < 10:
                    break
                length = struct.unpack_from(">Q", buffer, position + 2)[0]
                start = position + 10
            end = start + length
            if end > size:
                break
            opcode = buffer[position] & 0x0F
            if second & 0x80 or not buffer[position] & 0x80:
                self.bad += 1  # servers never mask, and none of these servers fragments
            elif opcode == 2:
                self._on_binary(buffer, start, end)
            elif opcode == 1:
                self._on_text(bytes(buffer[start:end]))
            elif opcode == 9 and self.transport is not None:
                self.transport.write(masked_pong(bytes(buffer[start:end])))
            elif opcode == 8 and self.transport is not None:
                self.transport.close()
            position = end
        return position

    def _on_binary(self, buffer: bytearray, start: int, end: int) -> None:
        view = memoryview(buffer)
        tag = protocol.read_tag(view[start:end])
        ends_well = view[end - 2 : end] == protocol.EOI
        view.release()
        if tag is None or not ends_well or tag[0] <= self.last_seq:
            self.bad += 1
            return
        seq, capture_us = tag
        self.frames_total += 1
        window = self.window
        if window.open and not window.closed:
            if not self.first_seq:
                self.first_seq = seq
            elif self.last_seq:
                self.dropped += seq - self.last_seq - 1
            self.frames += 1
            self.bytes += end - start
            window.latencies.append(now_us() - capture_us)
        self.last_seq = seq

    def _on_text(self, payload: bytes) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            return  # "pong" and other plain text
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "welcome" and not self.opened.done():
            self.probe_clock()
            self.opened.set_result(None)
        elif kind == "clock" and self.clock_sent_us:
            self.window.clock.add(self.clock_sent_us, now_us(), message["server_us"])
            self.clock_sent_us = 0
        elif kind == "error" and not self.opened.done():
            self.error = "%s: %s" % (message.get("error"), message.get("message"))

    def probe_clock(self) -> None:
        """Ask the server's clock; the reply refines the process's offset if it came back fastest."""
        if self.clock_sent_us:
            return  # one round trip at a time, so that a late reply is never paired with a newer request
        self.clock_sent_us = now_us()
        self.send(protocol.CLOCK)

    def send(self, text: str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(masked_text(text))

    def figures(self, seconds: float) -> dict[str, Any]:
        return {
            "fps": self.frames / seconds if seconds else 0.0,
            "frames": self.frames,
            "published": self.last_seq - self.first_seq + 1 if self.first_seq else 0,
            "dropped": self.dropped,
            "bytes": self.bytes,
            "bad": self.bad,
            "lost": self.lost,
        }


async def run_clients(job: dict[str, Any], report, start_at, end_at) -> dict[str, Any]:
    """Connect a process's clients, report ready, measure in the window the bench sets, sum up.

    Args:
        job: url, clients, slow, credit, rcvbuf, index and deadline (monotonic seconds).
        report: called with ("ready" | "tick", index, ...) tuples for the bench.
        start_at, end_at: shared values, 0 until the bench opens the window.
    """
    loop = asyncio.get_running_loop()
    url, index, deadline = job["url"], job["index"], job["deadline"]
    parts = urlsplit(url)
    window = Window()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def connect() -> LeanClient:
        async with gate:
            _, client = await loop.create_connection(
                lambda: LeanClient(url, window), parts.hostname, parts.port or 80
            )
            await asyncio.wait_for(client.opened, 20)
            return client

    from .slow import SlowClient

    slows = [
        SlowClient(url, credit=job["credit"], rcvbuf=job["rcvbuf"]) for _ in range(job["slow"])
    ]
    slow_tasks = [asyncio.create_task(slow.run(deadline)) for slow in slows]
    outcomes = await asyncio.gather(
        *[connect() for _ in range(job["clients"])], return_exceptions=True
    )
    clients = [item for item in outcomes if isinstance(item, LeanClient)]
    errors = sorted(
        {str(item) or type(item).__name__ for item in outcomes if not isinstance(item, LeanClient)}
    )
    report(("ready", index, len(clients), errors[:3]))
    for number in range(CLOCK_PROBES if clients else 0):
        # During the warm-up: more round trips, so the least delayed one is close to the floor.
        clients[number % len(clients)].probe_clock()
        await asyncio.sleep(0.05)
    while not start_at.value and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    start_s, end_s = start_at.value or deadline, end_at.value or deadline
    for slow in slows:
        slow.until_s = end_s
    await asyncio.sleep(max(0.0, start_s - time.monotonic()))
    window.open = True
    cpu_start = time.process_time()
    seen = sum(client.frames_total for client in clients)
    while time.monotonic() < end_s:
        await asyncio.sleep(min(1.0, max(0.0, end_s - time.monotonic())))
        total = sum(client.frames_total for client in clients)
        alive = sum(not client.lost for client in clients)
        report(("tick", index, total - seen, alive))
        seen = total
    window.closed = True
    cpu_s = time.process_time() - cpu_start
    await asyncio.wait(slow_tasks, timeout=5) if slow_tasks else None
    for client in clients:
        if client.transport is not None:
            client.transport.abort()
    seconds = end_s - start_s
    slow_seconds = [end_s - slow.connected_s if slow.connected_s else 0.0 for slow in slows]
    return {
        "index": index,
        "clients": [client.figures(seconds) for client in clients],
        "failed": len(outcomes) - len(clients),
        "errors": errors[:3],
        "slow": [slow.figures(s) for slow, s in zip(slows, slow_seconds, strict=True)],
        "latencies_us": window.latencies.tobytes(),
        "clock_offset_us": window.clock.offset_us or 0,
        "clock_rtt_us": window.clock.round_trip_us,
        "cpu_s": cpu_s,
        "seconds": seconds,
    }


def client_process(job: dict[str, Any], queue, start_at, end_at) -> None:
    """The body of one client process: its own event loop (uvloop if asked), results to `queue`."""
    from ...server import raise_open_files_limit
    from .servers import runner

    raise_open_files_limit(job["clients"] + job["slow"])
    with runner(job["uvloop"]) as loop_runner:
        result = loop_runner.run(run_clients(job, queue.put, start_at, end_at))
    queue.put(("result", job["index"], result))
