"""The benchmark end to end: real server processes, real client processes, sane figures."""

import json
import time

import pytest

from dronecam.cli import main
from dronecam.tools.bench import BenchSettings, run_bench
from dronecam.tools.bench.report import ratios
from support import seconds


def _sane(run: dict, clients: int) -> None:
    assert run["clients"] == clients and run["lost"] == 0 and run["bad_frames"] == 0
    assert 0 < run["fps_min"] <= run["fps_median"] <= 31
    assert run["frames_per_s"] > 0 and run["mb_per_s"] > 0
    assert run["latency_p50_ms"] is not None and run["latency_p99_ms"] >= run["latency_p50_ms"]
    assert run["server_cpu_us_per_frame"] > 0 and run["server_rss_mb_max"] > 10


def test_every_server_kind_gives_sane_figures_and_stops_by_itself():
    events: list[tuple] = []
    started = time.monotonic()
    report = run_bench(
        BenchSettings(clients=2, seconds=2, servers=("dronecam", "broadcast", "naive")),
        events.append,
    )
    assert time.monotonic() - started < seconds(90)
    assert [run["server"] for run in report["runs"]] == ["dronecam", "broadcast", "naive"]
    for run in report["runs"]:
        _sane(run, 2)
    assert set(report["ratios"]) == {"broadcast", "naive"}
    assert report["synthetic_encode_us"] > 0
    assert {event[0] for event in events} >= {"phase", "tick"}


def test_slow_client_with_credit_reports_its_lag(tmp_path):
    out = tmp_path / "bench.json"
    code = main(
        ["bench", "-n", "1", "-t", "3", "--slow", "1", "--credit", "--rcvbuf", "32768",
         "--json", str(out)]
    )  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    (run,) = report["runs"]
    _sane(run, 1)
    (slow,) = run["slow"]
    assert slow["credit"] and not slow["error"]
    assert 2 <= slow["frames"] and 0 < slow["fps"] <= 6
    assert all(lag is None or lag > 0 for lag in slow["lag_s"].values())


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


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        BenchSettings(servers=("nginx",))
    assert main(["bench", "--clients", "0"]) == 2


def test_soak_flag_runs_the_soak_test(capsys):
    assert main(["bench", "--soak", "3", "-n", "1"]) == 0
    assert "flat" in capsys.readouterr().out
