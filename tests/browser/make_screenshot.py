"""Make docs/viewer.png: the viewer streaming from the synthetic camera, in real Chromium.

/work/venv/bin/python tests/browser/make_screenshot.py docs/viewer.png [WIDTHxHEIGHT]
"""

from __future__ import annotations

import asyncio
import sys

from playwright.async_api import async_playwright

from support import CHROMIUM_ARGS, host_server
from viewer_support import CHROMIUM, viewer_file_url


async def main(out: str, size: str) -> None:
    width, height = (int(part) for part in size.split("x"))
    phone = width < 600
    async with host_server() as server, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(
            viewport={"width": width, "height": height},
            device_scale_factor=2 if phone else 1,
            is_mobile=phone,
            has_touch=phone,
        )
        await page.goto(viewer_file_url(url=server.url))
        await page.wait_for_function("() => window.dronecam.state === 'live'")
        await asyncio.sleep(2.5)
        await page.click("#ping")
        await page.click("#stats")
        await asyncio.sleep(1.2)  # one more figures update
        await page.screenshot(path=out, full_page=phone)
        await browser.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "1280x720"))
