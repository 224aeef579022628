"""Telemetry benchmark: what MAVLink parsing and per-frame telemetry cost (BENCHMARKS.md,
"MAVLink and telemetry").

    python -m dronecam.tools.benchmarks.telemetry [--seconds 2]

Parsing: core/mavlink.py against pymavlink's own parser on the same recorded flight bytes,
under CPython, and core/mavlink.py under the MicroPython unix port. Per frame: the host's
interpolated segment (`encode_at`), the device's patched one (`latest_segment`), and a
publish of a 30 kB JPEG with and without telemetry.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from dronecam.core.hub import Hub
from dronecam.core.mavlink import MavlinkReader
from dronecam.core.telemetry import TelemetryState
from dronecam.tools.firmware import tool
from dronecam.tools.flight import record_flight
from dronecam.tools.media import synthetic_jpegs

_MICROPYTHON_PARSE = """
import sys, time
sys.path.insert(0, %(src)r)
from dronecam.core.mavlink import MavlinkReader
from dronecam.core.telemetry import TelemetryState
data = open(%(flight)r, "rb").read()
state = TelemetryState()
reader = MavlinkReader(lambda m, s, c, p: state.apply(m, s, c, p, 1000))
view = memoryview(data)
start = time.ticks_us()
rounds = 0
while time.ticks_diff(time.ticks_us(), start) < %(seconds)d * 1000000:
    for offset in range(0, len(data), 256):
        reader.receive(view[offset:offset + 256])
    rounds += 1
elapsed = time.ticks_diff(time.ticks_us(), start) / 1e6
start = time.ticks_us()
for _ in range(10000):
    state.latest_segment(1001)
segment_us = time.ticks_diff(time.ticks_us(), start) / 10000
print(rounds * len(data) / elapsed, reader.received / elapsed, segment_us)
"""


def _flight_bytes(folder: Path) -> bytes:
    """The recorded flight as a plain MAVLink byte stream (records' headers dropped)."""
    recorded = (folder / "flight.bin").read_bytes() if (folder / "flight.bin").exists() else None
    if recorded is None:
        record_flight(folder / "flight.bin")
        recorded = (folder / "flight.bin").read_bytes()
    out = bytearray()
    offset = 0
    while offset + 6 <= len(recorded):
        length = int.from_bytes(recorded[offset + 4 : offset + 6], "big")
        out += recorded[offset + 6 : offset + 6 + length]
        offset += 6 + length
    return bytes(out)


def _rate(run, seconds: float) -> tuple[float, int]:
    """(calls per second, calls) of `run()` for about `seconds`."""
    calls = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        run()
        calls += 1
    return calls / (time.perf_counter() - start), calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement (default 2)")
    args = parser.parse_args()
    from dronecam.server.mavlink_link import mavutil

    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        data = _flight_bytes(folder)
        plain = folder / "plain.mavlink"
        plain.write_bytes(data)
        one_pass = MavlinkReader(lambda *_: None)
        one_pass.receive(data)
        per_round = one_pass.received
        ours = MavlinkReader(lambda *_: None)
        ours_rate, _ = _rate(lambda: ours.receive(data), args.seconds)
        module = mavutil().mavlink
        theirs = module.MAVLink(None)
        theirs.robust_parsing = True
        pymavlink_rate, _ = _rate(lambda: theirs.parse_buffer(data), args.seconds)
        print("flight bytes: %d, messages per pass: %d" % (len(data), per_round))
        print(
            "CPython  core/mavlink.py   %7.2f MB/s  (%.2fx pymavlink)"
            % (ours_rate * len(data) / 1e6, ours_rate / pymavlink_rate)
        )
        print("CPython  pymavlink          %7.2f MB/s" % (pymavlink_rate * len(data) / 1e6))
        script = _MICROPYTHON_PARSE % {
            "src": str(Path(__file__).parents[3]),
            "flight": str(plain),
            "seconds": max(1, int(args.seconds)),
        }
        result = subprocess.run(
            [tool("micropython"), "-c", script], capture_output=True, text=True, timeout=120
        )
        if result.returncode == 0:
            byte_rate, message_rate, segment_us = (float(v) for v in result.stdout.split())
            print(
                "MicroPython unix port core/mavlink.py %7.1f kB/s (%d messages/s); "
                "latest_segment %.1f us" % (byte_rate / 1e3, message_rate, segment_us)
            )
        else:
            print("MicroPython run failed: %s" % result.stderr.strip()[-200:])

        state = TelemetryState()
        MavlinkReader(lambda m, s, c, p: state.apply(m, s, c, p, 1000)).receive(data)
        encode_rate, _ = _rate(lambda: state.encode_at(1050), args.seconds)
        latest_rate, _ = _rate(lambda: state.latest_segment(1050), args.seconds)
        print("CPython  encode_at (host)   %7.1f us per frame" % (1e6 / encode_rate))
        print("CPython  latest_segment     %7.1f us per frame" % (1e6 / latest_rate))
        jpeg = synthetic_jpegs(1)[0]
        without = Hub()
        with_telemetry = Hub(annotate=lambda capture_us: state.encode_at(capture_us // 1000))
        base, _ = _rate(lambda: without.publish(jpeg, 1_050_000), args.seconds)
        annotated, _ = _rate(lambda: with_telemetry.publish(jpeg, 1_050_000), args.seconds)
        print(
            "publish a %d B JPEG: %.1f us without, %.1f us with telemetry (%.2fx)"
            % (len(jpeg), 1e6 / base, 1e6 / annotated, base / annotated)
        )


if __name__ == "__main__":
    main()
