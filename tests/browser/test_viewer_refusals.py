"""The viewer page says why a camera refused it: a wrong or missing token, a wrong path.

Browsers hide a refused WebSocket handshake's HTTP status from the page; the page asks the
same URL over HTTP to learn it (viewer.html `refusal`). Real Chromium, real host server, the
page opened from disk (another origin than the server's) and served by the server itself.
"""

from __future__ import annotations

import socket

import pytest

from support import host_server
from viewer_support import (
    RECORD_MESSAGES,
    viewer_file_url,
    viewer_html,
    wait_message,
    wait_state,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_a_missing_token_is_named_from_a_page_on_disk(page):
    await page.add_init_script(RECORD_MESSAGES)
    async with host_server(token="s3cret") as server:
        await page.goto(viewer_file_url(url=server.url))
        await wait_message(page, "needs an access token (HTTP 401). Add ?token=TOKEN")
        await wait_state(page, "error")  # it stops: trying again cannot help
    messages = await page.evaluate("() => window.__messages")
    assert not any("Cannot reach" in text or "WiFi" in text for text in messages), messages


async def test_a_wrong_token_is_named_and_never_shown(page):
    await page.add_init_script(RECORD_MESSAGES)
    async with host_server(token="s3cret") as server:
        await page.goto(viewer_file_url(url=server.url + "?token=guess"))
        await wait_message(page, "refused the access token (HTTP 401)")
        await wait_state(page, "error")
        shown = await page.inner_text("#message")
    assert "guess" not in shown and "s3cret" not in shown


async def test_a_served_page_without_its_token_says_so(page):
    await page.add_init_script(RECORD_MESSAGES)
    async with host_server(viewer_html=viewer_html(), token="s3cret") as server:
        await page.goto("http://127.0.0.1:%d/" % server.port)
        await wait_message(page, "needs an access token (HTTP 401)")
        await page.goto("http://127.0.0.1:%d/?token=s3cret" % server.port)
        await wait_state(page, "live")


async def test_a_wrong_path_points_to_ws(page):
    await page.add_init_script(RECORD_MESSAGES)
    async with host_server() as server:
        await page.goto(viewer_file_url(url="ws://127.0.0.1:%d/video" % server.port))
        await wait_message(
            page, "has no stream at /video (HTTP 404). The stream is at %s" % server.url
        )


async def test_nothing_there_is_still_cannot_reach(page):
    await page.add_init_script(RECORD_MESSAGES)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    await page.goto(viewer_file_url(url="ws://127.0.0.1:%d/ws" % port))
    await wait_message(page, "Cannot reach ws://127.0.0.1:%d/ws" % port)
    await wait_state(page, "waiting")  # and it keeps trying
