"""Real Chromium (Debian's /usr/bin/chromium, never a download) driven by Playwright."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from support import CHROMIUM_ARGS
from viewer_support import CHROMIUM


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser() -> AsyncIterator:
    if not os.path.exists(CHROMIUM):
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser) -> AsyncIterator:
    """A fresh page in its own context: its own localStorage, downloads accepted."""
    context = await browser.new_context(
        accept_downloads=True, viewport={"width": 1280, "height": 760}
    )
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        await context.close()
    assert not errors, "the page threw: %s" % errors
