"""`dronecam view` (cli/window.py) without a GUI or a display: one line that says what to do."""

import subprocess
import sys

import pytest

from dronecam.cli.window import check_display
from support import CHILD_ENV, seconds


def _view(**env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in CHILD_ENV.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    environ.pop("QT_QPA_PLATFORM", None)
    return subprocess.run(
        # It must answer before connecting: nothing listens at port 9.
        [sys.executable, "-m", "dronecam", "view", "ws://127.0.0.1:9/ws"],
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=seconds(20),
        check=False,
    )


def test_view_without_a_gui_says_what_to_install():
    result = _view(DISPLAY=":0")  # the test extras' OpenCV is headless
    assert result.returncode != 0
    assert "dronecam[view]" in result.stderr


def test_view_without_a_display_says_so_before_qt_aborts():
    # OpenCV's Qt backend aborts the process (rc 134) when it finds no display: the command
    # must look first and say what to do, in one line.
    result = _view()
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "DISPLAY" in lines[0] and "dronecam viewer" in lines[0]


@pytest.mark.parametrize(
    ("environ", "platform", "refused"),
    [
        ({}, "linux", True),
        ({"DISPLAY": ":0"}, "linux", False),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", False),
        ({"QT_QPA_PLATFORM": "offscreen"}, "linux", False),
        ({}, "darwin", False),
    ],
)
def test_the_display_check(environ, platform, refused):
    if refused:
        with pytest.raises(SystemExit, match="DISPLAY"):
            check_display(environ, platform)
    else:
        check_display(environ, platform)
