"""The viewer's flight HUD and geotagged Snapshot, in real Chromium, with pymavlink stand-ins."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest
from PIL import Image
from support_mavlink import drone, flying

from dronecam.tools.flight import M_PER_DEG_LAT
from support import host_server, seconds
from viewer_support import viewer_file_url, wait_drawn, wait_state

pytestmark = pytest.mark.asyncio(loop_scope="module")

HORIZON_COLOURS = """() => {
  const g = document.getElementById("horizon").getContext("2d");
  const top = g.getImageData(48, 20, 1, 1).data, bottom = g.getImageData(48, 76, 1, 1).data;
  return {top: Array.from(top), bottom: Array.from(bottom)};
}"""


async def test_the_hud_shows_the_frames_telemetry_and_snapshot_is_geotagged(page, tmp_path):
    async with drone(tmp_path, max_age_ms=1000) as d, flying(d.fc_port) as fc:
        await page.goto(viewer_file_url(url=d.server.url))
        await wait_state(page, "live")
        await page.wait_for_function(
            "() => { const t = window.dronecam.telemetry;"
            " return t && t.batteryV !== undefined && t.satellites !== undefined; }",
            timeout=seconds(10) * 1000,
        )  # battery comes at 1 Hz, GPS at 2 Hz
        assert await page.is_visible("#flight")
        telemetry = await page.evaluate("() => window.dronecam.telemetry")
        truth = fc.truth(telemetry["timeUnixMs"] / 1000)
        north = (telemetry["lat"] - truth.lat_deg) * M_PER_DEG_LAT
        east = (telemetry["lon"] - truth.lon_deg) * M_PER_DEG_LAT * math.cos(math.radians(47.4))
        # One telemetry period of travel (1 m at 10 m/s), with room for the stand-in's own
        # late sends while Chromium loads the machine; accuracy proper: test_telemetry_clients.
        assert math.hypot(north, east) < 1.5
        assert (await page.inner_text("#t-alt")).endswith(" m")
        assert "3D · 14 sat" == await page.inner_text("#t-gps")
        assert (await page.inner_text("#t-battery")).startswith("16.")
        assert (await page.inner_text("#t-speed")) == "10.0 m/s"
        colours = await page.evaluate(HORIZON_COLOURS)
        assert colours["top"][2] > colours["top"][0]  # sky above (blue)
        assert colours["bottom"][0] > colours["bottom"][2]  # ground below (brown)

        async with page.expect_download(timeout=seconds(10) * 1000) as download_info:
            await page.click("#snapshot")
        jpeg = Path(await (await download_info.value).path()).read_bytes()
        shown = await page.evaluate("() => window.dronecam.telemetry")
        image = Image.open(io.BytesIO(jpeg))
        gps = image.getexif().get_ifd(0x8825)
        lat = sum(float(v) / 60**i for i, v in enumerate(gps[2]))
        lon = sum(float(v) / 60**i for i, v in enumerate(gps[4]))
        assert image.size == (640, 480)
        assert gps[1] == "N" and gps[3] == "E"
        # The snapshot's position is that of a frame shown a moment ago: within a second's flight.
        assert abs(lat - shown["lat"]) * M_PER_DEG_LAT < 10
        assert abs(lon - shown["lon"]) * M_PER_DEG_LAT < 10
        assert abs(float(gps[6]) - shown["altMsl"]) < 3
        assert image.getexif().get_ifd(0x8769)[0x9003].startswith("20")  # DateTimeOriginal

        fc.silent()  # the HUD goes when the telemetry does, the video stays
        await page.wait_for_function(
            "() => window.dronecam.telemetry === null", timeout=seconds(5) * 1000
        )
        assert not await page.is_visible("#flight")
        await wait_drawn(page, 10)


async def test_the_hud_stays_hidden_without_a_flight_controller(page):
    async with host_server() as server:
        await page.goto(viewer_file_url(url=server.url))
        await wait_state(page, "live")
        await wait_drawn(page, 5)
        assert not await page.is_visible("#flight")
        assert await page.evaluate("() => window.dronecam.telemetry") is None
