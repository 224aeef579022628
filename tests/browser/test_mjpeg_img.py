"""`/stream.mjpg` in a plain <img> tag, in real Chromium: it shows and it moves at the camera rate."""

from __future__ import annotations

import asyncio

import pytest

from dronecam.outputs.mjpeg import MjpegOutput
from dronecam.outputs.snapshot import SnapshotOutput
from support import host_server, seconds
from support_hardening import MIN_FPS

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_img_tag_shows_the_stream_and_it_changes(page):
    async with host_server(outputs=[MjpegOutput(), SnapshotOutput()]) as server:
        url = server.url_for("/stream.mjpg")
        await page.set_content('<img id="video" src="%s">' % url)
        await page.wait_for_function(
            "() => document.getElementById('video').naturalWidth > 0",
            timeout=seconds(10) * 1000,
        )
        size = await page.evaluate(
            "() => { const v = document.getElementById('video');"
            " return [v.naturalWidth, v.naturalHeight]; }"
        )
        image = page.locator("#video")
        shots = [await image.screenshot()]
        subscription = server.hub.subscriptions[0]
        sent_before = subscription.frames_sent
        await asyncio.sleep(2)
        sent = subscription.frames_sent - sent_before
        shots.append(await image.screenshot())
    assert size == [640, 480]
    assert shots[0] != shots[1], "the picture did not change"
    assert sent / 2 >= MIN_FPS, sent  # Chromium takes every frame: nothing is skipped for it
    assert subscription.frames_dropped <= 2, subscription.frames_dropped
