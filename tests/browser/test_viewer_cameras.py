"""The viewer page on an edge of every camera (NATS): the list, switching, the grid, in Chromium."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from dronecam.tools.natsd import running_nats
from support import seconds, synthetic_jpegs
from support_nats import fleet_edge, origin
from viewer_support import viewer_html, wait_drawn

pytestmark = pytest.mark.asyncio(loop_scope="module")


@contextlib.asynccontextmanager
async def three_camera_edge():
    jpegs = synthetic_jpegs(3)
    with running_nats() as nats:
        async with (
            origin(nats.url, name="cam1", jpegs=jpegs[0:1]),
            origin(nats.url, name="cam2", jpegs=jpegs[1:2]),
            origin(nats.url, name="cam3", jpegs=jpegs[2:3]),
            fleet_edge(nats.url, wait_for_cameras=3, viewer_html=viewer_html()) as edge,
        ):
            yield edge


async def test_the_page_lists_the_cameras_switches_and_shows_a_grid_of_all(page):
    async with three_camera_edge() as edge:
        await page.goto("http://127.0.0.1:%d/" % edge.port)
        await wait_drawn(page, 5)
        buttons = page.locator("#cameras button[data-camera]")
        await buttons.nth(2).wait_for(timeout=seconds(10) * 1000)
        assert await buttons.all_inner_texts() == ["cam1", "cam2", "cam3"]
        await page.wait_for_selector('#cameras button[data-camera="cam1"][aria-pressed="true"]')
        await page.click('#cameras button[data-camera="cam2"]')
        await page.wait_for_selector(
            '#cameras button[data-camera="cam2"][aria-pressed="true"]',
            timeout=seconds(10) * 1000,
        )
        await wait_drawn(page, 10)
        assert edge.cameras.statuses["cam2"].hub.clients == 1
        assert edge.hub.clients == 0  # it left plain /ws (cam1) for cam2
        await page.click("#grid-toggle")
        await asyncio.sleep(seconds(3))
        tiles = await page.evaluate("() => window.dronecam.grid")
        assert sorted(tiles) == ["cam1", "cam2", "cam3"]
        # A low rate (one ack every 500 ms: 2 fps, 6 frames in 3 s), not the camera's 30 fps.
        assert all(4 <= frames <= 9 for frames in tiles.values()), tiles
        await page.click("#grid-toggle")
        await asyncio.sleep(0.5)
        assert edge.cameras.statuses["cam3"].hub.clients == 0
