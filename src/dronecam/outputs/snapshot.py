"""`GET /snapshot.jpg`: the newest frame as one JPEG, carrying its dronecam tag (docs/mjpeg.md)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from websockets.http11 import Request

from ..core.protocol import CAMERA_OK
from . import http

if TYPE_CHECKING:
    from ..core.hub import Hub

log = logging.getLogger("dronecam.server")

SNAPSHOT_PATH = "/snapshot.jpg"


class SnapshotOutput:
    """Answers `/snapshot.jpg` with the hub's newest frame, or 503 while the camera has none."""

    name = "snapshot"

    def __init__(self) -> None:
        self.served = 0
        self.routes: dict[str, http.Route] = {SNAPSHOT_PATH: self.serve}

    async def start(self, hub: Hub) -> None:
        """Nothing to start: a snapshot is read from the hub when asked for."""

    async def stop(self) -> None:
        """Nothing to stop."""

    def status(self) -> dict:
        return {"snapshots": self.served}

    def serve(self, connection: http.HttpExchange, request: Request) -> None:
        feed = connection.server.feed
        frame = feed.hub.latest
        # A frame from before a stall is not the camera's picture now: say so instead.
        if frame is None or feed.state != CAMERA_OK:
            why = " (%s)" % feed.last_error if feed.last_error and frame is not None else ""
            http.refuse(connection, 503, "No frame: the camera is %s%s\n" % (feed.state, why))
            return
        self.served += 1
        body = bytes(frame.jpeg())
        connection.ws.send_response(
            http.response(200, "OK", [("Content-Type", "image/jpeg")], body)
        )
