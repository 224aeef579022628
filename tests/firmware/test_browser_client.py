"""The original README's JavaScript client, in real Chromium, against the firmware."""

from playwright.async_api import async_playwright

from support import CHROMIUM_ARGS, seconds
from support_firmware import firmware_server

# The seed README's client, as written there, plus counters for the test to read.
PAGE = """<!doctype html><canvas id="c" width="640" height="480"></canvas><script>
window.drawn = 0; window.texts = [];
const ctx = document.getElementById("c").getContext("2d");
const ws = new WebSocket("%s");
ws.binaryType = "arraybuffer";
ws.onmessage = (event) => {
  if (event.data instanceof ArrayBuffer) {
    const blob = new Blob([event.data], { type: "image/jpeg" });
    const img = new Image();
    img.onload = () => {
      ctx.drawImage(img, 0, 0);
      window.size = [img.naturalWidth, img.naturalHeight];
      window.drawn += 1;
      URL.revokeObjectURL(img.src);
    };
    img.src = URL.createObjectURL(blob);
  } else {
    window.texts.push(event.data);
  }
};
</script>"""


async def test_original_javascript_client_draws_frames_from_the_firmware():
    async with firmware_server() as fw, async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page()
            await page.set_content(PAGE % fw.url)
            await page.wait_for_function("window.drawn >= 10", timeout=seconds(20) * 1000)
            assert await page.evaluate("window.size") == [640, 480]
            first = await page.evaluate("JSON.parse(window.texts[0])")
            assert first["type"] == "welcome"
            # Something was drawn: the canvas is not blank.
            pixels = await page.evaluate(
                "Array.from(document.getElementById('c').getContext('2d')"
                ".getImageData(300, 200, 40, 40).data).reduce((a, b) => a + b, 0)"
            )
            assert pixels > 0
        finally:
            await browser.close()
