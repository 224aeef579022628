"""Stand-in for MicroPython's `machine` on the unix port: a UART that replays a recorded flight.

`UART(id, baudrate=..., rx=..., tx=..., rxbuf=..., timeout=0)` takes the real constructor's
keywords; `readinto(buf)` and `read(n)` return the bytes a flight controller would have sent
by now, from DRONECAM_FLIGHT (default: flight.bin beside this file, written by
dronecam.tools.flight.record_flight: records of big-endian (ms, length) then MAVLink 2 bytes),
paced by the records' times and looping. Nothing pending: None, as the real UART with timeout 0.
"""

import os
import struct
import time

_HERE = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."


def _load(path):
    with open(path, "rb") as file:
        data = file.read()
    records = []  # (ms, start, end) into data
    offset = 0
    while offset + 6 <= len(data):
        ms, length = struct.unpack_from(">IH", data, offset)
        records.append((ms, offset + 6, offset + 6 + length))
        offset += 6 + length
    return data, records


class UART:
    def __init__(self, id, baudrate=115200, rx=None, tx=None, rxbuf=256, timeout=0, **options):
        if not isinstance(id, int) or id < 0 or id > 2:
            raise ValueError("UART(%r) doesn't exist" % id)
        self.id = id
        self.baudrate = baudrate
        self.rxbuf = rxbuf
        self._data, self._records = _load(os.getenv("DRONECAM_FLIGHT") or _HERE + "/flight.bin")
        last = self._records[-1][0] if self._records else 0
        self._period_ms = last + 100  # the replay loops: one record period after the last
        self._start_ms = time.ticks_ms()
        self._next = 0
        self._loops = 0
        self._pending = b""

    def _due(self):
        """Every record due by now, as one bytes object (at most rxbuf, like the driver's ring)."""
        elapsed = time.ticks_diff(time.ticks_ms(), self._start_ms)
        parts = []
        while self._records:
            ms, start, end = self._records[self._next]
            if ms + self._loops * self._period_ms > elapsed:
                break
            parts.append(self._data[start:end])
            self._next += 1
            if self._next == len(self._records):
                self._next = 0
                self._loops += 1
        if parts:
            self._pending = (self._pending + b"".join(parts))[-self.rxbuf:]

    def any(self):
        self._due()
        return len(self._pending)

    def readinto(self, buf, nbytes=None):
        self._due()
        if not self._pending:
            return None
        count = min(len(buf), len(self._pending), nbytes or len(buf))
        buf[0:count] = self._pending[0:count]
        self._pending = self._pending[count:]
        return count

    def read(self, nbytes=None):
        self._due()
        if not self._pending:
            return None
        count = len(self._pending) if nbytes is None else min(nbytes, len(self._pending))
        data, self._pending = self._pending[0:count], self._pending[count:]
        return data

    def write(self, data):
        return len(data)  # the flight controller stand-in ignores what the device says
