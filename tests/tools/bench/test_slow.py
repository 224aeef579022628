"""tools/bench/slow.py through `dronecam bench --slow`: a slow client with credit reports its lag."""

import json

from bench_support import sane

from dronecam.cli import main


def test_slow_client_with_credit_reports_its_lag(tmp_path):
    out = tmp_path / "bench.json"
    code = main(
        ["bench", "-n", "1", "-t", "3", "--slow", "1", "--credit", "--rcvbuf", "32768",
         "--json", str(out)]
    )  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    (run,) = report["runs"]
    sane(run, 1)
    (slow,) = run["slow"]
    assert slow["credit"] and not slow["error"]
    assert 2 <= slow["frames"] and 0 < slow["fps"] <= 6
    assert all(lag is None or lag > 0 for lag in slow["lag_s"].values())
