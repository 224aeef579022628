"""`dronecam viewer`: writes the page, and opens it through the user's browser setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from support import seconds
from viewer_support import viewer_html

SRC = str(Path(__file__).resolve().parents[2] / "src")
RECORDER = "import sys, pathlib; pathlib.Path(sys.argv[1]).write_text(sys.argv[2])"


def dronecam(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dronecam", *args],
        env={**os.environ, "PYTHONPATH": SRC, **(env or {})},
        capture_output=True,
        timeout=seconds(30),
        check=False,
    )


def test_writes_the_page(tmp_path):
    out = tmp_path / "page.html"
    result = dronecam("viewer", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == viewer_html()
    assert str(out) in result.stdout.decode()
    assert dronecam("viewer", "--out", "-").stdout == viewer_html()


def test_says_when_it_cannot_write(tmp_path):
    result = dronecam("viewer", "--out", str(tmp_path / "missing" / "page.html"))
    assert result.returncode == 1
    assert b"cannot write" in result.stderr


@pytest.mark.asyncio(loop_scope="module")
async def test_opens_the_page_connected_to_the_given_camera(tmp_path, page):
    out, opened = tmp_path / "page.html", tmp_path / "opened.txt"
    # webbrowser runs $BROWSER with the page's URL: here a recorder instead of a desktop browser.
    browser = "%s -c %r %s %%s" % (sys.executable, RECORDER, opened)
    url = "ws://127.0.0.1:9/ws"
    result = dronecam("viewer", "--out", str(out), "--open", "--url", url, env={"BROWSER": browser})
    assert result.returncode == 0, result.stderr
    page_url = opened.read_text()
    assert page_url.startswith(out.as_uri())
    await page.goto(page_url)
    assert await page.input_value("#address") == url
