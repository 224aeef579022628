"""`dronecam bench`: fan-out measured against websockets.broadcast and a naive loop (docs/bench.md)."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from typing import Any

from .run import BenchSettings, run_one
from .servers import SERVER_KINDS


def encode_cost_us(frames: int = 30) -> float:
    """The synthetic camera's render + encode cost per frame, measured apart from fan-out.

    CPU time, not wall time: other work on a shared machine stretches the latter.
    """
    from ...sources.synthetic import SyntheticCamera

    camera = SyntheticCamera()
    camera.render(1)
    started_ns = time.process_time_ns()
    for number in range(2, frames + 2):
        camera.render(number)
    return (time.process_time_ns() - started_ns) / 1000 / frames


def machine() -> dict[str, Any]:
    import os

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_1min": os.getloadavg()[0],
    }


def run_bench(
    settings: BenchSettings, on_event: Callable[[tuple], None], on_start=None
) -> dict[str, Any]:
    """Every server kind once per round, `repeat` rounds; returns the report behind --json."""
    from .report import ratios

    encode_us = encode_cost_us()
    runs = []
    for round_number in range(settings.repeat):
        for kind in settings.servers:
            if on_start is not None:
                on_start("%s (round %d/%d)" % (kind, round_number + 1, settings.repeat))
            result = run_one(settings, kind, on_event)
            result["round"] = round_number
            runs.append(result)
    return {
        "settings": settings.describe(),
        "machine": machine(),
        "synthetic_encode_us": encode_us,
        "runs": runs,
        "ratios": ratios(runs),
    }


__all__ = ["SERVER_KINDS", "BenchSettings", "run_bench"]
