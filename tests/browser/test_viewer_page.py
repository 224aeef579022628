"""The browser viewer (viewer.html) in real Chromium against the real host server."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from pathlib import Path

import pytest
import websockets

from dronecam.core import protocol
from support import ListSource, host_server, seconds, synthetic_jpegs
from viewer_support import (
    CANVAS_SIGNATURE,
    RECORD_MESSAGES,
    figure,
    viewer_file_url,
    viewer_html,
    wait_drawn,
    wait_figure,
    wait_log,
    wait_message,
    wait_state,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_streams_to_the_canvas_and_the_figures_update(page):
    async with host_server() as server:
        await page.goto(viewer_file_url(url=server.url))
        await wait_state(page, "live")
        await wait_drawn(page, 3)
        first = await page.evaluate(CANVAS_SIGNATURE)
        assert (first["width"], first["height"]) == (640, 480)
        assert first["mean"] > 20, "the canvas is still black"
        await wait_drawn(page, 10)
        second = await page.evaluate(CANVAS_SIGNATURE)
        assert second["hash"] != first["hash"], "the canvas did not change between frames"

        fps = float(await wait_figure(page, "fps", "parseFloat(text) > 0"))
        assert 0 < fps < 1000
        latency = await wait_figure(page, "latency", "/^\\d+(\\.\\d)? ms$/.test(text)")
        # Same machine, so the clock-corrected latency is small; a wrong offset is off by ages.
        assert float(latency.split()[0]) < 2000
        assert float(await wait_figure(page, "rate", "parseFloat(text) > 0")) > 0
        assert await wait_figure(page, "clients", "text === '1/5'") == "1/5"
        assert await wait_figure(page, "camera", "text === 'ok'") == "ok"
        assert (await figure(page, "dropped")).isdigit()
        counts = await page.evaluate("() => window.dronecam.counts")
        assert counts["flow"] is True
        # Every frame received was drawn, skipped, or is still on its way through the decoder.
        assert 0 <= counts["received"] - counts["drawn"] - counts["skipped"] <= 2


async def test_buttons_ping_stats_snapshot_and_fullscreen(page):
    async with host_server() as server:
        await page.goto(viewer_file_url(url=server.url))
        await wait_state(page, "live")
        await page.click("#ping")
        assert "pong in" in await wait_log(page, "pong in")
        await page.click("#stats")
        stats = await wait_log(page, "stats:")
        assert "clients 1" in stats and "window 2" in stats
        # The page's count of seq gaps is the server's count of frames it skipped for us.
        server_dropped = re.search(r"dropped (\d+)", stats).group(1)
        assert re.search(r"this page saw (\d+) dropped", stats).group(1) == server_dropped

        async with page.expect_download(timeout=seconds(10) * 1000) as download_info:
            await page.click("#snapshot")
        download = await download_info.value
        assert download.suggested_filename.startswith("dronecam-")
        assert download.suggested_filename.endswith(".jpg")
        jpeg = Path(await download.path()).read_bytes()
        assert jpeg[:2] == protocol.SOI
        assert protocol.read_tag(jpeg) is not None

        await page.click("#fullscreen")
        await page.wait_for_function(
            "() => document.fullscreenElement === document.getElementById('stage')",
            timeout=seconds(5) * 1000,
        )
        await page.click("#exit-fullscreen")
        await page.wait_for_function("() => !document.fullscreenElement")


async def test_without_credit_flow_frames_still_flow(page):
    async with host_server() as server:
        await page.goto(viewer_file_url(url=server.url, flow="0"))
        await wait_state(page, "live")
        await wait_drawn(page, 10)
        await page.click("#stats")
        assert "window 0" in await wait_log(page, "stats:")
        assert (await page.evaluate("() => window.dronecam.counts"))["flow"] is False
        assert await page.is_checked("#flow") is False


async def test_reconnects_after_the_server_restarts(page):
    await page.add_init_script(RECORD_MESSAGES)
    async with host_server() as server:
        port = server.port
        await page.goto(viewer_file_url(url=server.url))
        await wait_state(page, "live")
    await wait_message(page, "The server shut down. Retrying in")
    async with host_server(port=port):
        await wait_state(page, "live", timeout_s=15)
        await wait_drawn(page, 5)


async def test_shows_the_refusal_when_the_server_is_full(page):
    async with host_server(max_clients=1) as server:
        async with websockets.connect(server.url) as other:
            welcome = json.loads(await asyncio.wait_for(other.recv(), seconds(5)))
            assert welcome["type"] == "welcome"
            await page.add_init_script(RECORD_MESSAGES)
            await page.goto(viewer_file_url(url=server.url))
            await wait_message(page, "The camera is full: server full: 1 of 1 clients")
            await wait_message(page, "Close another viewer or wait. Retrying in")
        # The other viewer left: the page gets in on a later try.
        await wait_state(page, "live", timeout_s=15)


async def test_says_when_the_address_is_unreachable(page):
    await page.add_init_script(RECORD_MESSAGES)
    await page.goto(viewer_file_url(url="ws://127.0.0.1:%d/ws" % closed_port()))
    await wait_message(page, "Cannot reach ws://127.0.0.1:")
    await wait_message(page, "the camera's network")
    await page.click("#connect")  # Disconnect: stop trying
    await wait_state(page, "idle")


async def test_gives_up_on_an_address_that_never_answers(page):
    await page.add_init_script(RECORD_MESSAGES)
    with socket.socket() as silent:  # accepts TCP connections (the kernel does) but never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = "ws://127.0.0.1:%d/ws" % silent.getsockname()[1]
        await page.goto(viewer_file_url(url=url))
        await wait_message(page, "No answer from %s in 5 s" % url)


async def test_says_when_the_stream_stalls(page):
    source = ListSource(synthetic_jpegs(5), loop=False)
    async with host_server(source) as server:
        await page.goto(viewer_file_url(url=server.url, stall="1"))
        await wait_state(page, "live")
        await wait_state(page, "stalled")
        assert "No video for" in await page.inner_text("#message")
        assert "stalled" in await page.inner_text("#message")


async def test_served_page_connects_to_its_own_server(page):
    async with host_server(viewer_html=viewer_html()) as server:
        await page.goto("http://127.0.0.1:%d/" % server.port)
        await wait_state(page, "live")
        assert await page.input_value("#address") == "127.0.0.1:%d" % server.port
        await wait_drawn(page, 5)


async def test_file_page_remembers_the_address(page):
    await page.goto(viewer_file_url())
    assert await page.input_value("#address") == "192.168.4.1"
    assert await page.evaluate("() => window.dronecam.state") == "idle"
    async with host_server() as server:
        await page.fill("#address", "127.0.0.1:%d" % server.port)
        await page.click("#connect")
        await wait_state(page, "live")
        await wait_drawn(page, 3)
        await page.goto(viewer_file_url())
        assert await page.input_value("#address") == "127.0.0.1:%d" % server.port
        await page.press("#address", "Enter")
        await wait_state(page, "live")


async def test_rejects_an_address_that_is_not_one(page):
    async with host_server() as server:
        await page.goto(viewer_file_url(url=server.url))
        await wait_state(page, "live")
        await page.fill("#address", "ftp://camera")
        await page.press("#address", "Enter")
        await wait_state(page, "error")
        assert "is not an address" in await page.inner_text("#message")
        await asyncio.sleep(0.5)  # the old stream is closed, not still drawing behind the message
        assert await page.evaluate("() => [window.dronecam.state, window.dronecam.counts]") == [
            "error",
            None,
        ]


async def counts_after(page, delay_s: float) -> dict:
    await asyncio.sleep(delay_s)
    return await page.evaluate("() => window.dronecam.counts")


@pytest.mark.parametrize("flow", ["1", "0"])
async def test_a_page_too_slow_to_draw_every_frame_skips_to_the_newest(page, flow):
    # 60 frames a second to a page whose CPU runs 20 times slower than this machine's.
    async with host_server(ListSource(synthetic_jpegs(10), fps=60)) as server:
        cdp = await page.context.new_cdp_session(page)
        await page.goto(viewer_file_url(url=server.url, flow=flow))
        await wait_state(page, "live")
        await cdp.send("Emulation.setCPUThrottlingRate", {"rate": 20})
        before = await counts_after(page, 1)
        after = await counts_after(page, 2)
        await cdp.send("Emulation.setCPUThrottlingRate", {"rate": 1})
    assert after["drawn"] > before["drawn"], "the page stopped drawing"
    for counts in (before, after):
        assert 0 <= counts["received"] - counts["drawn"] - counts["skipped"] <= 2
    if flow == "1":
        # The server holds back all but the newest frame: nothing piles up for the page to skip.
        assert after["dropped"] > before["dropped"]
        assert after["skipped"] == before["skipped"]
    else:
        # Frames keep coming; the page draws the newest and skips the ones in between.
        assert after["skipped"] > before["skipped"]


async def test_served_page_passes_its_token_on(page):
    async with host_server(viewer_html=viewer_html(), token="s3cret") as server:
        await page.goto("http://127.0.0.1:%d/?token=s3cret" % server.port)
        await wait_state(page, "live")
