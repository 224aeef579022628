"""Telemetry in every client: stats, snapshot (EXIF GPS), record (subtitles and sidecar)."""

import json
import math

import av
from cli_support import dronecam
from PIL import Image
from rich.console import Console
from support_mavlink import drone, flying

from dronecam.cli import monitor
from dronecam.client import StreamClient
from dronecam.record import record, sidecar_path
from dronecam.tools.flight import M_PER_DEG_LAT


async def wait_full_telemetry(url: str):
    """Until the frames carry every group (battery comes at 1 Hz, GPS at 2 Hz)."""
    async with StreamClient(url) as client:
        async for frame in client.frames():
            t = frame.telemetry
            if t is not None and t.battery_v is not None and t.satellites is not None:
                return client


def metres_apart(lat1, lon1, lat2, lon2) -> float:
    north = (lat1 - lat2) * M_PER_DEG_LAT
    east = (lon1 - lon2) * M_PER_DEG_LAT * math.cos(math.radians(lat1))
    return math.hypot(north, east)


async def test_stats_shows_the_drones_state(tmp_path):
    async with drone(tmp_path) as d, flying(d.fc_port):
        client = await wait_full_telemetry(d.server.url)
        console = Console(record=True, width=100)
        console.print(monitor.render(d.server.url, client.stats, "streaming"))
    text = console.export_text()
    for row in ("position", "47.39", "altitude rel / MSL", "battery", "fix 3, 14 satellites"):
        assert row in text, text
    empty = Console(record=True, width=100)
    empty.print(monitor.render("ws://x/ws", StreamClient("ws://x/ws").stats, "connecting"))
    assert "no flight controller" in empty.export_text()


async def test_snapshot_is_geotagged_where_the_drone_was(tmp_path):
    out = tmp_path / "frame.jpg"
    async with drone(tmp_path) as d, flying(d.fc_port) as fc:
        async with StreamClient(d.server.url) as client:  # wait until telemetry flows
            async for frame in client.frames():
                if frame.telemetry is not None:
                    break
        code, output = await dronecam("snapshot", d.server.url, str(out))
    assert code == 0 and "geotagged" in output, output
    exif = Image.open(out).getexif()
    gps = exif.get_ifd(0x8825)
    lat = sum(float(v) / 60**i for i, v in enumerate(gps[2]))
    lon = sum(float(v) / 60**i for i, v in enumerate(gps[4]))
    stamp = exif.get_ifd(0x8769)[0x9003]  # DateTimeOriginal, UTC
    assert gps[1] == "N" and gps[3] == "E" and float(gps[6]) > 488  # altitude above sea level
    import datetime

    taken = datetime.datetime.strptime(stamp, "%Y:%m:%d %H:%M:%S").replace(tzinfo=datetime.UTC)
    subsecond = int(exif.get_ifd(0x8769)[0x9291]) / 1000
    truth = fc.truth(taken.timestamp() + subsecond)
    assert metres_apart(lat, lon, truth.lat_deg, truth.lon_deg) < 1.0
    assert abs(float(gps[17]) - truth.heading_deg) < 3  # image direction: the heading


async def test_a_recording_has_a_subtitle_and_a_sidecar_entry_per_frame(tmp_path):
    out = tmp_path / "flight.mkv"
    async with drone(tmp_path) as d, flying(d.fc_port) as fc:
        await wait_full_telemetry(d.server.url)
        result = await record(d.server.url, out, max_frames=45)
    assert result.frames == 45
    lines = [json.loads(line) for line in sidecar_path(out).read_text().splitlines()]
    assert len(lines) == 45
    assert [line["seq"] for line in lines] == sorted(line["seq"] for line in lines)
    with av.open(str(out)) as container:
        video_pts = [
            round(float(p.pts * p.time_base) * 1000)
            for p in container.demux(container.streams.video[0])
            if p.size
        ]
    with av.open(str(out)) as container:
        subtitles = [
            (round(float(p.pts * p.time_base) * 1000), bytes(p).decode())
            for p in container.demux(container.streams.subtitles[0])
            if p.size
        ]
    assert len(subtitles) == len(video_pts) == 45
    for pts_ms, (sub_ms, text), line in zip(video_pts, subtitles, lines, strict=True):
        assert sub_ms == pts_ms == (line["pts_us"] + 500) // 1000
        assert "GPS %.6f, %.6f" % (line["lat_deg"], line["lon_deg"]) in text
        assert "ALT %.1f m" % line["alt_rel_m"] in text and "HDG" in text
        truth = fc.truth(line["time_unix_ms"] / 1000)
        assert metres_apart(line["lat_deg"], line["lon_deg"], truth.lat_deg, truth.lon_deg) < 1.0
        assert line["battery_v"] > 16 and line["gps_fix"] == 3
