"""How far the viewer lags behind live, with and without credit flow, on a slow link or phone.

    python -m dronecam.tools.benchmarks.viewer [SECONDS]     # 9 runs of SECONDS (default 30)

Real Chromium and the real host server on loopback, pre-encoded 640x480 JPEGs (~13 kB) at
30 fps. A slow WiFi link is stood in for by Chromium's own network throttling (CDP
Network.emulateNetworkConditions, which covers WebSockets), a slow phone by CPU throttling
(CDP Emulation.setCPUThrottlingRate). The lag is the page's "on screen" figure: capture time
(frame tag) to drawn, clock-corrected, sampled once a second and averaged over each third of
the run, so that a lag that grows shows as growing. Prints a Markdown table.
"""

from __future__ import annotations

import asyncio
import math
import re
import statistics
import sys

from playwright.async_api import async_playwright

from ...server import ServerSettings, running_server
from ..browser import CHROMIUM, CHROMIUM_ARGS, viewer_file_url
from ..media import ListSource, synthetic_jpegs


def host_server(source: ListSource):
    return running_server(source, ServerSettings(host="127.0.0.1", port=0))


SLOW_LINK = {
    "offline": False,
    "latency": 20,
    "downloadThroughput": 150_000,
    "uploadThroughput": 150_000,
}
# (name, network conditions or None, CPU slowdown)
CONDITIONS = (
    ("loopback", None, 1),
    ("150 kB/s link, 20 ms", SLOW_LINK, 1),
    ("CPU 1/20 (slow phone)", None, 20),
)
FLOWS: tuple[tuple[str, dict[str, str]], ...] = (
    ("off", {"flow": "0"}),
    ("window 1", {"window": "1"}),
    ("window 2 (default)", {}),
)


def milliseconds(text: str) -> float:
    found = re.search(r"([\d.]+) ms", text)
    return float(found.group(1)) if found else float("nan")


def mean_lag(lag: dict[int, float], low: int, high: int) -> float:
    """Seconds in which nothing was drawn (the first, or on a starved page) have no figure."""
    values = [lag[second] for second in range(low, high + 1) if not math.isnan(lag[second])]
    return statistics.fmean(values) if values else math.nan


async def run(browser, jpegs, network, throttle: int, params: dict, seconds: int) -> dict:
    async with host_server(ListSource(jpegs, fps=30)) as server:
        page = await browser.new_page()
        cdp = await page.context.new_cdp_session(page)
        await page.goto(viewer_file_url(url=server.url, **params))
        await page.wait_for_function("() => window.dronecam.state === 'live'")
        if network:
            await cdp.send("Network.enable")
            await cdp.send("Network.emulateNetworkConditions", network)
        await cdp.send("Emulation.setCPUThrottlingRate", {"rate": throttle})
        start = await page.evaluate("() => window.dronecam.counts")
        lag: dict[int, float] = {}
        for second in range(1, seconds + 1):
            await asyncio.sleep(1)
            lag[second] = milliseconds(await page.inner_text("#latency-detail"))
        end = await page.evaluate("() => window.dronecam.counts")
        await page.close()
    return {
        "drawn_fps": (end["drawn"] - start["drawn"]) / seconds,
        "skipped": end["skipped"] - start["skipped"],
        "dropped": end["dropped"] - start["dropped"],
        "lag": lag,
    }


async def main(seconds: int) -> None:
    jpegs = synthetic_jpegs(30)
    thirds = [(1 + n * seconds // 3, (n + 1) * seconds // 3) for n in range(3)]
    print(
        "| condition | credit flow | drawn fps | skipped by page | dropped by server | "
        + " | ".join("lag %d-%d s" % third for third in thirds)
        + " |"
    )
    print("|---|---|---|---|---|---|---|---|")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for name, network, throttle in CONDITIONS:
            for flow, params in FLOWS:
                result = await run(browser, jpegs, network, throttle, params, seconds)
                lags = " | ".join(
                    "%.0f ms" % mean_lag(result["lag"], low, high) for low, high in thirds
                )
                print(
                    "| %s | %s | %.1f | %d | %d | %s |"
                    % (name, flow, result["drawn_fps"], result["skipped"], result["dropped"], lags),
                    flush=True,
                )
        await browser.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 30))
