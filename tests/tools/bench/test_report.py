"""tools/bench/report.py: ratios pair runs of the same round."""

import pytest

from dronecam.tools.bench.report import ratios


def test_ratios_pair_runs_of_the_same_round():
    runs = [
        {"round": 0, "server": "dronecam", "server_cpu_us_per_frame": 8.0},
        {"round": 0, "server": "broadcast", "server_cpu_us_per_frame": 10.0},
        {"round": 1, "server": "dronecam", "server_cpu_us_per_frame": 9.0},
        {"round": 1, "server": "broadcast", "server_cpu_us_per_frame": 10.0},
    ]
    found = ratios(runs)
    assert found["broadcast"]["per_round"] == [0.8, 0.9]
    assert found["broadcast"]["best"] == 0.8 and found["broadcast"]["median"] == pytest.approx(0.85)
    assert "naive" not in found
