"""The firmware's frames carry the flight controller's telemetry: the unix port's stand-in UART
replays a recorded flight (firmware/sim/flight.bin) through core/mavlink.py."""

import math
from pathlib import Path

from dronecam.client import StreamClient
from dronecam.tools.flight import (
    FLIGHT_START_UNIX_S,
    M_PER_DEG_LAT,
    RECORDED_FLIGHT_S,
    CircuitPath,
    record_flight,
)
from support_firmware import firmware_server

FLIGHT = Path(__file__).parents[2] / "src" / "dronecam" / "firmware" / "sim" / "flight.bin"


def metres_apart(t, truth) -> float:
    north = (t.lat_deg - truth.lat_deg) * M_PER_DEG_LAT
    east = (t.lon_deg - truth.lon_deg) * M_PER_DEG_LAT * math.cos(math.radians(47.4))
    return math.hypot(north, east)


def test_the_committed_flight_is_what_the_flight_tool_records(tmp_path):
    out = tmp_path / "flight.bin"
    record_flight(out)
    assert out.read_bytes() == FLIGHT.read_bytes()


async def test_firmware_frames_carry_the_state_of_their_instant():
    path = CircuitPath()
    async with firmware_server(mavlink_uart=1) as firmware:
        async with StreamClient(firmware.url) as client:
            checked, worst_m, worst_fix_m = 0, 0.0, 0.0
            async for frame in client.frames():
                t = frame.telemetry
                if t is None or t.time_unix_ms is None:
                    continue
                flight_s = t.time_unix_ms / 1000 - FLIGHT_START_UNIX_S
                if flight_s > RECORDED_FLIGHT_S - 1:  # the replay is looping over
                    continue
                truth = path.at(flight_s)
                worst_m = max(worst_m, metres_apart(t, truth))
                # ...and exactly the fix heard `age_ms` before the capture.
                worst_fix_m = max(worst_fix_m, metres_apart(t, path.at(flight_s - t.age_ms / 1000)))
                # The device carries the newest fix as it is, with its age: one 10 Hz period.
                assert t.age_ms <= 150, t.age_ms
                assert t.gps_fix in (None, 3) and abs(t.alt_rel_m - truth.alt_rel_m) < 0.5
                checked += 1
                if checked == 60:
                    break
    # 10 m/s, fixes every 100 ms, held for up to a period (plus the unix port's scheduling):
    # within 1.5 m of the capture instant, and within centimetres of the fix it says it is.
    assert worst_m < 1.5, worst_m
    assert worst_fix_m < 0.2, worst_fix_m


async def test_without_a_uart_the_firmware_frames_carry_no_telemetry():
    async with firmware_server() as firmware:
        async with StreamClient(firmware.url) as client:
            async for frame in client.frames():
                assert frame.telemetry is None
                break
