"""tools/bench (run_bench, BenchSettings) end to end: real server and client processes, sane figures."""

import time

import pytest
from bench_support import sane

from dronecam.cli import main
from dronecam.tools.bench import BenchSettings, run_bench
from support import seconds


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
        sane(run, 2)
    assert set(report["ratios"]) == {"broadcast", "naive"}
    assert report["synthetic_encode_us"] > 0
    assert {event[0] for event in events} >= {"phase", "tick"}


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        BenchSettings(servers=("nginx",))
    assert main(["bench", "--clients", "0"]) == 2
