"""What every benchmark test asks of a run's figures."""


def sane(run: dict, clients: int) -> None:
    assert run["clients"] == clients and run["lost"] == 0 and run["bad_frames"] == 0
    assert 0 < run["fps_min"] <= run["fps_median"] <= 31
    assert run["frames_per_s"] > 0 and run["mb_per_s"] > 0
    assert run["latency_p50_ms"] is not None and run["latency_p99_ms"] >= run["latency_p50_ms"]
    # CPU time is counted in 10 ms clock ticks: a cheap server over a short run may show 0.
    assert run["server_cpu_us_per_frame"] >= 0 and run["server_rss_mb_max"] > 10
