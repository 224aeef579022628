"""What the viewer's tests share: the browser's path and flags, the page's URLs, waits on it."""

from __future__ import annotations

from importlib.resources import files

from dronecam.tools.browser import CHROMIUM, CHROMIUM_ARGS, viewer_file_url
from support import seconds

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "viewer_file_url",
    "viewer_html",
    "wait_drawn",
    "wait_state",
]


def viewer_html() -> bytes:
    return (files("dronecam") / "viewer.html").read_bytes()


CANVAS_SIGNATURE = """() => {
  const canvas = document.getElementById("video");
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let hash = 0, light = 0, samples = 0;
  for (let i = 0; i < data.length; i += 4 * 61) {
    hash = (hash * 31 + data[i] + 3 * data[i + 1] + 7 * data[i + 2]) >>> 0;
    light += data[i] + data[i + 1] + data[i + 2];
    samples += 1;
  }
  return {hash, mean: light / samples / 3, width: canvas.width, height: canvas.height};
}"""


async def wait_state(page, state: str, timeout_s: float = 10) -> None:
    await page.wait_for_function(
        "state => window.dronecam.state === state", arg=state, timeout=seconds(timeout_s) * 1000
    )


async def wait_drawn(page, frames: int) -> None:
    """Until the current connection has drawn `frames` more frames than now."""
    start = await page.evaluate("() => window.dronecam.counts ? window.dronecam.counts.drawn : 0")
    await page.wait_for_function(
        "n => window.dronecam.counts && window.dronecam.counts.drawn >= n",
        arg=start + frames,
        timeout=seconds(10) * 1000,
    )


async def figure(page, name: str) -> str:
    return await page.inner_text("#" + name)


async def wait_figure(page, name: str, predicate: str) -> str:
    """Until the figure's text satisfies a JS predicate of `text`; returns the text."""
    await page.wait_for_function(
        "([id, body]) => new Function('text', 'return ' + body)"
        "(document.getElementById(id).textContent)",
        arg=[name, predicate],
        timeout=seconds(10) * 1000,
    )
    return await figure(page, name)


async def wait_log(page, needle: str) -> str:
    await page.wait_for_function(
        "needle => document.getElementById('log').textContent.includes(needle)",
        arg=needle,
        timeout=seconds(10) * 1000,
    )
    return await page.inner_text("#log")


# Every message the overlay shows, so that a test sees one even if the page has moved on.
RECORD_MESSAGES = """addEventListener("DOMContentLoaded", () => {
  window.__messages = [];
  const message = document.getElementById("message");
  new MutationObserver(() => window.__messages.push(message.textContent))
    .observe(message, {childList: true, characterData: true, subtree: true});
});"""


async def wait_message(page, needle: str) -> None:
    await page.wait_for_function(
        "needle => window.__messages.some((text) => text.includes(needle))",
        arg=needle,
        timeout=seconds(10) * 1000,
    )
