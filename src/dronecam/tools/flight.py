"""A flight controller stand-in: a scripted circuit sent as an autopilot's MAVLink (pymavlink).

For tests and demos without a drone: `python -m dronecam.tools.flight udpout:127.0.0.1:14550`
flies a 50 m circle at 10 m/s around PX4's SITL home, 30 m up, sending what ArduPilot and PX4
stream to a companion computer (HEARTBEAT, SYSTEM_TIME, GLOBAL_POSITION_INT, ATTITUDE,
VFR_HUD, GPS_RAW_INT, SYS_STATUS, BATTERY_STATUS) at `rate_hz`. `CircuitPath.at(t)` is the
truth the tests compare frames against. `record_flight` writes the firmware's recorded flight.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import struct
import time
from pathlib import Path
from typing import Any

HOME_LAT = 47.397742
HOME_LON = 8.545594
HOME_ALT_M = 488.0
M_PER_DEG_LAT = 111319.49
FLIGHT_START_UNIX_S = 1_767_225_600.0  # the recorded flight's start: 2026-01-01 00:00 UTC
RECORDED_FLIGHT_S = 20.0


class FlightState:
    """Where the stand-in vehicle is at one instant, in plain units."""

    def __init__(self, **fields: float) -> None:
        self.lat_deg = fields["lat_deg"]
        self.lon_deg = fields["lon_deg"]
        self.alt_rel_m = fields["alt_rel_m"]
        self.alt_msl_m = HOME_ALT_M + self.alt_rel_m
        self.vn_mps = fields["vn_mps"]
        self.ve_mps = fields["ve_mps"]
        self.climb_mps = fields["climb_mps"]
        self.heading_deg = fields["heading_deg"]
        self.roll_rad = fields["roll_rad"]
        self.pitch_rad = fields["pitch_rad"]
        self.battery_v = fields["battery_v"]

    @property
    def groundspeed_mps(self) -> float:
        return math.hypot(self.vn_mps, self.ve_mps)


class CircuitPath:
    """A circle of `radius_m` flown at `speed_mps`, climbing and sinking 2 m every 12 s."""

    def __init__(self, radius_m: float = 50.0, speed_mps: float = 10.0) -> None:
        self.radius_m = radius_m
        self.speed_mps = speed_mps

    def at(self, t_s: float) -> FlightState:
        omega = self.speed_mps / self.radius_m
        angle = omega * t_s
        north = self.radius_m * math.sin(angle)
        east = self.radius_m * (1 - math.cos(angle))
        cos_lat = math.cos(math.radians(HOME_LAT))
        return FlightState(
            lat_deg=HOME_LAT + north / M_PER_DEG_LAT,
            lon_deg=HOME_LON + east / (M_PER_DEG_LAT * cos_lat),
            alt_rel_m=30.0 + 2.0 * math.sin(0.5 * t_s),
            vn_mps=self.speed_mps * math.cos(angle),
            ve_mps=self.speed_mps * math.sin(angle),
            climb_mps=1.0 * math.cos(0.5 * t_s),
            heading_deg=math.degrees(angle) % 360,
            roll_rad=math.atan(self.speed_mps * omega / 9.81),
            pitch_rad=-0.05,
            battery_v=16.8 - 0.002 * t_s,
        )


def messages(mav: Any, state: FlightState, t_s: float, unix_s: float, tick: int) -> list[Any]:
    """The autopilot's messages for one tick (pymavlink objects of `mav`'s dialect)."""
    boot_ms = int(t_s * 1000) & 0xFFFFFFFF
    heading = math.radians(state.heading_deg)
    yaw = heading if heading <= math.pi else heading - 2 * math.pi
    sent = [
        mav.global_position_int_encode(
            boot_ms,
            round(state.lat_deg * 1e7),
            round(state.lon_deg * 1e7),
            round(state.alt_msl_m * 1000),
            round(state.alt_rel_m * 1000),
            round(state.vn_mps * 100),
            round(state.ve_mps * 100),
            round(-state.climb_mps * 100),
            round(state.heading_deg * 100) % 36000,
        ),
        mav.attitude_encode(boot_ms, state.roll_rad, state.pitch_rad, yaw, 0.0, 0.0, 0.2),
        mav.vfr_hud_encode(
            state.groundspeed_mps,
            state.groundspeed_mps,
            round(state.heading_deg) % 360,
            45,
            state.alt_msl_m,
            state.climb_mps,
        ),
    ]
    if tick % 5 == 0:
        sent.append(
            mav.gps_raw_int_encode(
                int(unix_s * 1e6),
                3,
                round(state.lat_deg * 1e7),
                round(state.lon_deg * 1e7),
                round(state.alt_msl_m * 1000),
                80,
                120,
                round(state.groundspeed_mps * 100),
                round(state.heading_deg * 100) % 36000,
                14,
            )
        )
    if tick % 10 == 0:
        sent += [
            mav.heartbeat_encode(2, 3, 81, 0, 4),  # quadrotor, PX4, armed, active
            mav.system_time_encode(int(unix_s * 1e6), boot_ms),
            mav.sys_status_encode(
                0, 0, 0, 300, round(state.battery_v * 1000), 1250, 82, 0, 0, 0, 0, 0, 0
            ),
        ]
    return sent


class FlightController:
    """Sends the circuit over a pymavlink connection at `rate_hz` until stopped.

    `silent()` makes it stop talking (a broken link) while the test goes on.
    """

    def __init__(
        self,
        connection: str,
        path: CircuitPath | None = None,
        rate_hz: float = 10.0,
        system_id: int = 1,
    ) -> None:
        from dronecam.server.mavlink_link import mavutil

        self.path = path or CircuitPath()
        self.rate_hz = rate_hz
        self.conn = mavutil().mavlink_connection(
            connection, source_system=system_id, source_component=1
        )
        self.start_unix_s = time.time()
        self.sent = 0
        self.talking = True

    def t_at(self, unix_s: float) -> float:
        """The path's time at a unix time."""
        return unix_s - self.start_unix_s

    def truth(self, unix_s: float) -> FlightState:
        return self.path.at(self.t_at(unix_s))

    def silent(self) -> None:
        self.talking = False

    async def run(self) -> None:
        period = 1 / self.rate_hz
        tick = 0
        while True:
            if self.talking:
                unix_s = time.time()
                t_s = self.t_at(unix_s)
                for message in messages(self.conn.mav, self.path.at(t_s), t_s, unix_s, tick):
                    self.conn.mav.send(message)
                    self.sent += 1
            tick += 1
            await asyncio.sleep(period)

    def close(self) -> None:
        self.conn.close()


def record_flight(out: Path, seconds: float = RECORDED_FLIGHT_S, rate_hz: float = 10.0) -> int:
    """Write a recorded flight for the firmware's stand-in UART: records of (ms, length, bytes).

    Each record is big-endian `>IH` (milliseconds from the start, byte count) then the
    MAVLink 2 bytes sent at that instant. Returns the number of records.
    """
    from dronecam.server.mavlink_link import mavutil

    module = mavutil().mavlink

    class _Bytes:
        def __init__(self) -> None:
            self.data = b""

        def write(self, data: bytes) -> None:
            self.data += data

    sink = _Bytes()
    mav = module.MAVLink(sink, srcSystem=1, srcComponent=1)
    path = CircuitPath()
    start_unix = FLIGHT_START_UNIX_S
    records = []
    for tick in range(int(seconds * rate_hz)):
        t_s = tick / rate_hz
        sink.data = b""
        for message in messages(mav, path.at(t_s), t_s, start_unix + t_s, tick):
            mav.send(message)
        records.append(struct.pack(">IH", int(t_s * 1000), len(sink.data)) + sink.data)
    out.write_bytes(b"".join(records))
    return len(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "connection", nargs="?", help="pymavlink connection, e.g. udpout:127.0.0.1:14550"
    )
    parser.add_argument("--rate", type=float, default=10.0, help="ticks per second (default 10)")
    parser.add_argument(
        "--record",
        type=Path,
        metavar="FILE",
        help="write the recorded flight the firmware's stand-in UART replays, and exit "
        "(src/dronecam/firmware/sim/flight.bin)",
    )
    args = parser.parse_args()
    if args.record:
        print("%d records written to %s" % (record_flight(args.record), args.record))
        return
    if not args.connection:
        parser.error("give a connection, or --record FILE")
    controller = FlightController(args.connection, rate_hz=args.rate)
    try:
        asyncio.run(controller.run())
    except KeyboardInterrupt:
        pass
    finally:
        controller.close()


if __name__ == "__main__":
    main()
