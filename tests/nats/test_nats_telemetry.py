"""Telemetry rides inside the tagged JPEG through NATS: a drone publishes, an edge serves."""

import math

from support_mavlink import drone, flying

from dronecam.bus import NatsAddress
from dronecam.client import StreamClient
from dronecam.outputs.nats import NatsPublisher, PublisherSettings
from dronecam.tools.flight import M_PER_DEG_LAT
from support_nats import edge, next_frame


async def test_frames_from_nats_carry_the_drones_telemetry(nats_server, tmp_path):
    publisher = NatsPublisher(PublisherSettings(NatsAddress(nats_server.url), "cam1"))
    async with (
        drone(tmp_path, outputs=[publisher]) as d,
        flying(d.fc_port) as fc,
        edge(nats_server.url + "/cam1") as relay,
        StreamClient(relay.url) as client,
    ):
        checked = 0
        while checked < 10:
            t = (await next_frame(client)).telemetry
            if t is None:
                continue
            truth = fc.truth(t.time_unix_ms / 1000)
            north = (t.lat_deg - truth.lat_deg) * M_PER_DEG_LAT
            east = (t.lon_deg - truth.lon_deg) * M_PER_DEG_LAT * math.cos(math.radians(47.4))
            assert math.hypot(north, east) < 1.0
            checked += 1
