"""The viewer against the firmware under the real MicroPython unix port."""

from __future__ import annotations

import pytest

from support import seconds
from support_firmware import firmware_server
from viewer_support import (
    CANVAS_SIGNATURE,
    viewer_file_url,
    wait_drawn,
    wait_figure,
    wait_log,
    wait_state,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_streams_from_the_firmware(page):
    async with firmware_server() as device:
        await page.goto(viewer_file_url(url=device.url))
        await wait_state(page, "live", timeout_s=15)
        await wait_drawn(page, 3)
        first = await page.evaluate(CANVAS_SIGNATURE)
        assert (first["width"], first["height"]) == (640, 480)
        await wait_drawn(page, 10)
        second = await page.evaluate(CANVAS_SIGNATURE)
        assert second["hash"] != first["hash"], "the canvas did not change between frames"
        assert float(await wait_figure(page, "fps", "parseFloat(text) > 0")) > 0
        latency = await wait_figure(page, "latency", "/^\\d+(\\.\\d)? ms$/.test(text)")
        assert float(latency.split()[0]) < seconds(2) * 1000
        assert (await wait_figure(page, "clients", "text.startsWith('1/')")).startswith("1/")
        assert await wait_figure(page, "camera", "text === 'ok'") == "ok"
        counts = await page.evaluate("() => window.dronecam.counts")
        assert counts["flow"] is True, "the firmware takes credit flow too"
        await page.click("#ping")
        await wait_log(page, "pong in")
        await page.click("#stats")
        assert "window 2" in await wait_log(page, "stats:")
