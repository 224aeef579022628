"""The viewer over a minute of streaming: JS heap, DOM, bitmaps and object URLs stay flat."""

from __future__ import annotations

import asyncio

import pytest

from support import host_server, seconds
from viewer_support import viewer_file_url

pytestmark = pytest.mark.asyncio(loop_scope="module")

RUN_S = 60
# Counts what the page allocates that a leak would keep: decoded bitmaps and object URLs.
SPY = """(() => {
  const spy = window.__spy = {bitmaps: 0, closed: 0, urls: 0, revoked: 0};
  const createBitmap = window.createImageBitmap;
  window.createImageBitmap = function (...args) {
    return createBitmap.apply(this, args).then((bitmap) => { spy.bitmaps += 1; return bitmap; });
  };
  const close = ImageBitmap.prototype.close;
  ImageBitmap.prototype.close = function () { spy.closed += 1; return close.call(this); };
  const createUrl = URL.createObjectURL;
  URL.createObjectURL = (object) => { spy.urls += 1; return createUrl.call(URL, object); };
  const revokeUrl = URL.revokeObjectURL;
  URL.revokeObjectURL = (url) => { spy.revoked += 1; return revokeUrl.call(URL, url); };
})();"""


async def memory(cdp) -> dict:
    await cdp.send("HeapProfiler.collectGarbage")
    heap = await cdp.send("Runtime.getHeapUsage")
    dom = await cdp.send("Memory.getDOMCounters")
    return {**heap, **dom}


@pytest.mark.timeout(RUN_S + 60)
async def test_heap_stays_flat_over_a_minute(page):
    await page.add_init_script(SPY)
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("HeapProfiler.enable")
    async with host_server() as server:
        await page.goto(viewer_file_url(url=server.url))
        await page.wait_for_function(
            "() => window.dronecam.state === 'live'", timeout=seconds(10) * 1000
        )
        # Warm up: fill the log to its cap and take a snapshot, so first-use is not a leak.
        for _ in range(25):
            await page.click("#ping")
            await page.click("#stats")
        async with page.expect_download():
            await page.click("#snapshot")
        await asyncio.sleep(1)
        start = await memory(cdp)
        drawn_start = (await page.evaluate("() => window.dronecam.counts"))["drawn"]
        clock = asyncio.get_running_loop().time
        started_s = clock()
        second = 0
        while clock() < started_s + RUN_S:
            if second % 2 == 0:  # keep the log at its cap
                await page.click("#ping")
                await page.click("#stats")
            if second % 20 == 10:
                async with page.expect_download():
                    await page.click("#snapshot")
            second += 1
            await asyncio.sleep(1)
        elapsed_s = clock() - started_s
        await asyncio.sleep(1.5)  # the last snapshot's URL is revoked after 1 s
        end = await memory(cdp)
        counts = await page.evaluate("() => window.dronecam.counts")
        spy = await page.evaluate("() => window.__spy")
        assert await page.evaluate("() => window.dronecam.state") == "live"

    drawn = counts["drawn"] - drawn_start
    print(
        "\nviewer over %.0f s: %d frames drawn (%.1f fps), %d skipped, %d dropped by the server; "
        "JS heap %.2f -> %.2f MB, backing store %.2f -> %.2f MB, DOM nodes %d -> %d, "
        "listeners %d -> %d"
        % (
            elapsed_s,
            drawn,
            drawn / elapsed_s,
            counts["skipped"],
            counts["dropped"],
            start["usedSize"] / 1e6,
            end["usedSize"] / 1e6,
            start.get("backingStorageSize", 0) / 1e6,
            end.get("backingStorageSize", 0) / 1e6,
            start["nodes"],
            end["nodes"],
            start["jsEventListeners"],
            end["jsEventListeners"],
        )
    )
    assert drawn > 100, "the stream did not keep going"
    # A leaked frame a draw would add ~12 KB each: 20 MB over the run. The bounds are generous.
    assert end["usedSize"] - start["usedSize"] < 2_000_000
    assert end.get("backingStorageSize", 0) - start.get("backingStorageSize", 0) < 4_000_000
    assert end["nodes"] - start["nodes"] < 200
    assert end["jsEventListeners"] - start["jsEventListeners"] <= 5
    assert spy["bitmaps"] - spy["closed"] <= 1, "decoded bitmaps were not closed"
    assert spy["urls"] == spy["revoked"] > 1, "object URLs were left unrevoked"
