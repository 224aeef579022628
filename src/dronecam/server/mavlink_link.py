"""One MAVLink link of the camera component: a pymavlink connection read by the event loop.

Connection strings are pymavlink's (`udpin:0.0.0.0:14550`, `udpout:HOST:PORT`, `tcp:HOST:PORT`)
or a serial device with its baud rate (`/dev/ttyAMA0,921600`). The connection's socket or
serial port is non-blocking and read with `loop.add_reader`: no thread, no queue, and a flood
waits in the kernel's buffer (where it is dropped) instead of in ours.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any

log = logging.getLogger("dronecam.mavlink")

MESSAGES_PER_WAKEUP = 200  # then other callbacks (frames, clients) get the loop back


class MavlinkLinkError(Exception):
    """A link that cannot be opened: the message says which and what to do."""


def mavutil():
    """pymavlink's mavutil on the MAVLink 2 common dialect (the `mavlink` extra)."""
    os.environ.setdefault("MAVLINK20", "1")  # pymavlink picks its wire version from this
    try:
        from pymavlink import mavutil as module
    except ImportError:
        raise MavlinkLinkError(
            "--mavlink needs pymavlink: pip install 'dronecam[mavlink]'"
        ) from None
    module.set_dialect("common")
    return module


def split_baud(connection: str) -> tuple[str, int | None]:
    """`/dev/ttyAMA0,921600` -> (`/dev/ttyAMA0`, 921600); other strings unchanged."""
    device, comma, baud = connection.rpartition(",")
    if comma and baud.isdigit():
        return device, int(baud)
    return connection, None


class MavlinkLink:
    """A pymavlink connection, opened in a thread (TCP connects and retries), read by the loop."""

    def __init__(
        self,
        connection: str,
        system_id: int,
        component_id: int,
        on_message: Callable[[MavlinkLink, Any], None],
    ) -> None:
        self.connection = connection
        self.system_id = system_id
        self.component_id = component_id
        self.on_message = on_message
        self.received = 0
        self.bad = 0  # what pymavlink could not parse (bad CRC, garbage)
        self.sent = 0
        self.send_errors = 0
        self._conn: Any = None
        self._fd: int | None = None

    async def open(self) -> None:
        """Open the connection and start reading it.

        Raises:
            MavlinkLinkError: pymavlink is missing, or the device or address cannot be opened.
        """
        module = mavutil()
        device, baud = split_baud(self.connection)
        options: dict[str, Any] = {
            "source_system": self.system_id,
            "source_component": self.component_id,
            "robust_parsing": True,
            "retries": 0,
        }
        if baud is not None:
            options["baud"] = baud
        try:
            self._conn = await asyncio.to_thread(module.mavlink_connection, device, **options)
        except Exception as error:  # pymavlink raises OSError, SerialException, ValueError...
            raise MavlinkLinkError(
                "cannot open MAVLink connection %s: %s" % (self.connection, error)
            ) from None
        fd = getattr(self._conn, "fd", None)
        if fd is None:
            self._conn.close()
            raise MavlinkLinkError(
                "MAVLink connection %s cannot be watched by the event loop; use udpin:, "
                "udpout:, tcp: or a serial device" % self.connection
            )
        self._fd = fd
        asyncio.get_running_loop().add_reader(fd, self._readable)
        log.info("[MAVLink] link %s open", self.connection)

    def close(self) -> None:
        if self._fd is not None:
            asyncio.get_running_loop().remove_reader(self._fd)
            self._fd = None
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
            self._conn = None

    def set_system_id(self, system_id: int) -> None:
        """Speak as `system_id` from now on (the vehicle's, once it is heard)."""
        self.system_id = system_id
        if self._conn is not None:
            self._conn.mav.srcSystem = system_id

    def send(self, message: Any) -> None:
        """Send one pymavlink message; a full buffer or a vanished peer is counted, not raised."""
        if self._conn is None:
            return
        try:
            self._conn.mav.send(message)
            self.sent += 1
        except OSError:
            self.send_errors += 1

    def _readable(self) -> None:
        conn = self._conn
        for _ in range(MESSAGES_PER_WAKEUP):
            if conn is None:
                return
            try:
                message = conn.recv_msg()
            except Exception:  # a hostile peer must never take the component down
                self.bad += 1
                continue
            if message is None:
                return
            if message.get_type() == "BAD_DATA":
                self.bad += 1
                continue
            self.received += 1
            self.on_message(self, message)
            conn = self._conn

    def status(self) -> dict:
        return {"received": self.received, "bad": self.bad, "sent": self.sent}
