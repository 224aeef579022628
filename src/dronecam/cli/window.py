"""`dronecam view`: the stream in an OpenCV window, with live figures drawn over it."""

from __future__ import annotations

import asyncio
import os
import sys

import numpy as np

from ..client import StreamClient

INSTALL_HINT = (
    "install the window extra: pip install 'dronecam[view]' (opencv-python with GUI support)"
)


def check_display(environ=os.environ, platform: str = sys.platform) -> None:
    """SystemExit if no window can open: OpenCV's Qt backend aborts the process (SIGABRT)
    when it finds no display, past any Python error handling, so look before it does."""
    if not platform.startswith("linux") or environ.get("QT_QPA_PLATFORM"):
        return
    if not environ.get("DISPLAY") and not environ.get("WAYLAND_DISPLAY"):
        raise SystemExit(
            "dronecam view needs a display, and neither DISPLAY nor WAYLAND_DISPLAY is set: "
            "run it on the desktop (or ssh -X), or watch in a browser: dronecam viewer --open"
        )


def load_cv2():
    """OpenCV with a GUI backend, or SystemExit telling the user what to install."""
    check_display()
    try:
        import cv2
    except ImportError:
        raise SystemExit("dronecam view needs OpenCV: " + INSTALL_HINT) from None
    try:
        cv2.namedWindow("dronecam", cv2.WINDOW_AUTOSIZE)
    except cv2.error:
        raise SystemExit(
            "this OpenCV has no window support (headless build or no display): "
            + INSTALL_HINT
            + ", and run it on a desktop"
        ) from None
    return cv2


async def run(url: str, window: int | None) -> None:
    """Show frames until the window is closed or q/Esc is pressed."""
    cv2 = load_cv2()
    async with StreamClient(url, window=window, reconnect=True) as client:
        async for frame in client.frames():
            image = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR)
            if image is None:
                continue
            stats = client.stats
            latency = stats.latency_ms(50)
            text = "#%d  %.1f fps  %s  dropped %d" % (
                frame.seq,
                stats.fps,
                "-" if latency is None else "%.0f ms" % latency,
                stats.dropped,
            )
            cv2.putText(
                image,
                text,
                (10, image.shape[0] - 12),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.55,
                (255, 255, 255),
                1,
                cv2.LINE_AA,
            )
            cv2.imshow("dronecam", image)
            key = cv2.waitKey(1) & 0xFF
            if key in (ord("q"), 27) or cv2.getWindowProperty("dronecam", cv2.WND_PROP_VISIBLE) < 1:
                break
            await asyncio.sleep(0)
    cv2.destroyAllWindows()
