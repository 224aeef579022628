"""What the benchmark shows: live figures while it runs, tables and ratios at the end."""

from __future__ import annotations

import statistics
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table


class LiveView:
    """A one-line live status: phase, delivered fps per client, server CPU and RSS."""

    def __init__(self, console: Console, clients: int) -> None:
        self.console = console
        self.clients = max(1, clients)
        self.label = ""
        self.phase = "starting"
        self.ticks: dict[int, int] = {}
        self.server_cpu: float | None = None
        self.rss: float | None = None
        self.started = time.monotonic()
        self.live = Live(self._render(), console=console, refresh_per_second=4, transient=True)

    def __enter__(self) -> LiveView:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)

    def start(self, label: str) -> None:
        self.label, self.phase, self.ticks = label, "starting", {}
        self.server_cpu = self.rss = None
        self.started = time.monotonic()
        self.live.update(self._render())

    def on_event(self, event: tuple) -> None:
        if event[0] == "phase":
            self.phase = event[1]
        elif event[0] == "tick":
            self.ticks[event[1]] = event[2]
        elif event[0] == "server":
            self.server_cpu, self.rss = event[1], event[2]
        self.live.update(self._render())

    def _render(self) -> str:
        parts = [
            "[bold]%s[/]" % self.label,
            self.phase,
            "%.0f s" % (time.monotonic() - self.started),
        ]
        if self.ticks:
            parts.append("%.1f fps/client" % (sum(self.ticks.values()) / self.clients))
        if self.server_cpu is not None:
            parts.append("server %.0f%% CPU, %.0f MB" % (self.server_cpu, self.rss or 0))
        return "  ".join(parts)


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else "%.*f" % (digits, value)


def results_table(runs: list[dict[str, Any]]) -> Table:
    table = Table(title="dronecam bench: fan-out on loopback", show_lines=False)
    for header in (
        "server", "clients", "source fps", "fps min", "fps median", "dropped", "p50 ms", "p99 ms",
        "MB/s", "server CPU %", "us/frame", "client CPU %", "RSS MB",
    ):  # fmt: skip
        table.add_column(header, justify="left" if header == "server" else "right")
    for run in runs:
        table.add_row(
            run["server"],
            "%d%s" % (run["clients"], " (+%d slow)" % len(run["slow"]) if run["slow"] else ""),
            _number(run["source_fps"]),
            _number(run["fps_min"]),
            _number(run["fps_median"]),
            str(run["dropped"]),
            _number(run["latency_p50_ms"], 2),
            _number(run["latency_p99_ms"], 2),
            _number(run["mb_per_s"]),
            _number(run["server_cpu_pct"]),
            _number(run["server_cpu_us_per_frame"]),
            _number(run["client_cpu_pct"]),
            _number(run["server_rss_mb_max"]),
        )
    return table


def slow_table(runs: list[dict[str, Any]]) -> Table | None:
    rows = [(run, slow) for run in runs for slow in run["slow"]]
    if not rows:
        return None
    moments = list(rows[0][1]["lag_s"])
    table = Table(title="slow clients (one frame every 200 ms)")
    for header in [
        "server",
        "credit",
        "slow fps",
        *("lag at %s s" % m for m in moments),
        "others fps min",
    ]:
        table.add_column(header, justify="left" if header == "server" else "right")
    for run, slow in rows:
        table.add_row(
            run["server"],
            "window %d" % slow["credit"] if slow["credit"] else "no",
            _number(slow["fps"]),
            *(_number(slow["lag_s"][m], 2) for m in moments),
            _number(run["fps_min"]),
        )
    return table


def ratios(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Server CPU per frame of dronecam over each baseline, per round and their median.

    Runs come in rounds (every server once per round), so each ratio compares runs made
    close together on the same busy machine.
    """
    rounds: dict[int, dict[str, float]] = {}
    for run in runs:
        value = run["server_cpu_us_per_frame"]
        if value:
            rounds.setdefault(run["round"], {})[run["server"]] = value
    found: dict[str, dict[str, Any]] = {}
    for baseline in ("broadcast", "naive"):
        values = [
            r["dronecam"] / r[baseline]
            for r in rounds.values()
            if "dronecam" in r and baseline in r
        ]
        if values:
            found[baseline] = {
                "per_round": values,
                "median": statistics.median(values),
                "best": min(values),
            }
    return found


def print_report(console: Console, report: dict[str, Any]) -> None:
    console.print(results_table(report["runs"]))
    table = slow_table(report["runs"])
    if table is not None:
        console.print(table)
    for baseline, ratio in report["ratios"].items():
        console.print(
            "server CPU per frame, dronecam / %s: median %.2fx, best %.2fx over %d round(s)"
            % (baseline, ratio["median"], ratio["best"], len(ratio["per_round"]))
        )
    encode = report.get("synthetic_encode_us")
    if encode:
        console.print(
            "synthetic camera encode: %.0f us per frame (%.0f%% of a core at %g fps)"
            % (encode, encode * report["settings"]["fps"] / 1e4, report["settings"]["fps"])
        )
    for run in report["runs"]:
        problems = []
        if run["bad_frames"]:
            problems.append("%d invalid frames" % run["bad_frames"])
        if run["lost"]:
            problems.append("%d clients lost or refused" % run["lost"])
        if run["connect_errors"]:
            problems.append("errors: %s" % "; ".join(run["connect_errors"]))
        problems += ["slow client: %s" % s["error"] for s in run["slow"] if s["error"]]
        if problems:
            console.print("[yellow]%s: %s[/]" % (run["server"], ", ".join(problems)))
