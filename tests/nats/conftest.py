"""Real nats-server processes on loopback, always killed at the end of the test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dronecam.tools.natsd import NatsServer, running_cluster, running_nats


@pytest.fixture
def nats_server(tmp_path) -> Iterator[NatsServer]:
    with running_nats(jetstream=True, store_dir=tmp_path / "jetstream") as server:
        yield server


@pytest.fixture
def cluster() -> Iterator[list[NatsServer]]:
    with running_cluster(3) as nodes:
        yield nodes
