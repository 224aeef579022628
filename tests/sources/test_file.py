"""`file:` sources on media the tests make: MJPEG files, folders of JPEGs, video files."""

import asyncio
import time

import pytest
import simplejpeg
from media_files import write_h264, write_mjpeg_mkv

from dronecam.client import StreamClient
from dronecam.core.protocol import strip_tags
from dronecam.core.source import SourceError
from dronecam.sources import SourceSettings, make_source
from support import seconds, start_dronecam


async def _read_all(source, limit: int = 100) -> list[bytes]:
    """Frames until the source reports its end (it must, within `limit` frames)."""
    frames = []
    await source.open()
    try:
        for _ in range(limit):
            try:
                frames.append(await asyncio.wait_for(source.read(), seconds(5)))
            except SourceError as error:
                assert "--loop" in str(error)
                return frames
    finally:
        await source.close()
    raise AssertionError("the file source never ended")


async def test_mjpeg_file_plays_each_jpeg_unchanged(tmp_path, jpegs):
    path = tmp_path / "flight.mjpeg"
    path.write_bytes(b"".join(jpegs))
    source = make_source("file:%s" % path, SourceSettings(fps=240))
    assert await _read_all(source) == jpegs
    assert (source.width, source.height) == (640, 480)


async def test_folder_plays_jpegs_in_name_order(tmp_path, jpegs):
    for index, jpeg in enumerate(jpegs):
        (tmp_path / ("frame%03d.jpg" % (len(jpegs) - index))).write_bytes(jpeg)
    (tmp_path / "notes.txt").write_text("not a frame")
    source = make_source("file:%s" % tmp_path, SourceSettings(fps=240))
    assert await _read_all(source) == list(reversed(jpegs))


async def test_h264_video_is_decoded_and_scaled_to_fit(tmp_path):
    path = write_h264(tmp_path / "flight.mp4", frames=12, width=1280, height=720)
    source = make_source("file:%s" % path, SourceSettings(fps=240, quality=0))
    frames = await _read_all(source)
    assert len(frames) == 12
    levels = [int(simplejpeg.decode_jpeg(f, colorspace="GRAY").mean()) for f in frames]
    assert all(abs(level - 10 * i) <= 3 for i, level in enumerate(levels)), levels
    assert (source.width, source.height) == (640, 360)
    assert simplejpeg.decode_jpeg_header(frames[0])[:2] == (360, 640)


async def test_mjpeg_video_passes_jpegs_through_at_its_own_timestamps(tmp_path, jpegs):
    times_us = [0, 10_000, 15_000, 40_000, 45_000, 50_000, 90_000, 100_000]
    path = write_mjpeg_mkv(tmp_path / "recorded.mkv", jpegs, times_us)
    source = make_source("file:%s" % path)  # no fps: the file's own timestamps pace it
    started = time.monotonic()
    assert await _read_all(source) == jpegs
    # Never faster than the timestamps (a lower bound only: a slow machine cannot fail it).
    assert time.monotonic() - started >= 0.095


async def test_loop_replays_from_the_start(tmp_path, jpegs):
    path = tmp_path / "short.mjpg"
    path.write_bytes(b"".join(jpegs[:3]))
    source = make_source("file:%s" % path, SourceSettings(fps=240, loop=True))
    await source.open()
    frames = [await asyncio.wait_for(source.read(), seconds(5)) for _ in range(7)]
    await source.close()
    assert frames == jpegs[:3] * 2 + jpegs[:1]


async def test_after_the_end_without_loop_reopening_says_so(tmp_path, jpegs):
    path = tmp_path / "once.mjpeg"
    path.write_bytes(jpegs[0])
    source = make_source("file:%s" % path, SourceSettings(fps=240))
    assert await _read_all(source) == [jpegs[0]]
    with pytest.raises(SourceError, match=r"ended.*--loop"):
        await source.open()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.mp4", None, "does not exist"),
        ("notes.mp4", b"these are not the frames you are looking for" * 10, "not a video file"),
        ("empty.mjpeg", b"", "empty"),
        ("text.mjpeg", b"no jpeg here", "no whole JPEG"),
    ],
)
async def test_what_is_not_video_is_refused_with_a_reason(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SourceError, match=message):
        await make_source("file:%s" % path).open()


async def test_empty_folder_is_refused(tmp_path):
    with pytest.raises(SourceError, match=r"no \.jpg"):
        await make_source("file:%s" % tmp_path).open()


def test_unknown_uri_lists_the_kinds():
    with pytest.raises(SourceError, match="v4l2:/dev/video0"):
        make_source("camera0")


async def _serve(*args: str) -> asyncio.subprocess.Process:
    return await start_dronecam(
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def test_dronecam_serve_plays_a_file_in_a_loop(tmp_path, jpegs):
    path = tmp_path / "flight.mjpeg"
    path.write_bytes(b"".join(jpegs[:3]))
    server = await _serve("--source", "file:%s" % path, "--loop", "--fps", "60")
    try:

        async def endpoint() -> str:
            assert server.stdout is not None
            while line := (await server.stdout.readline()).decode():
                if "endpoint: " in line:
                    return line.split("endpoint: ")[1].strip()
            raise AssertionError("the server ended without serving")

        url = await asyncio.wait_for(endpoint(), seconds(20))
        async with StreamClient(url) as client:
            frames = client.frames()
            for _ in range(8):  # more frames than the file holds: it loops
                frame = await asyncio.wait_for(anext(frames), seconds(5))
                assert strip_tags(frame.jpeg) in jpegs[:3]
            assert client.welcome["source"] == "file:flight.mjpeg"
    finally:
        server.terminate()
        await server.wait()


async def test_dronecam_serve_refuses_a_missing_file(tmp_path):
    server = await _serve("--source", "file:%s" % (tmp_path / "missing.mp4"))
    output, _ = await asyncio.wait_for(server.communicate(), seconds(20))
    assert server.returncode == 1
    assert "missing.mp4 does not exist" in output.decode()
