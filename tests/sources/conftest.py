"""Fixtures of the source tests."""

from __future__ import annotations

import pytest

from support import synthetic_jpegs


@pytest.fixture(scope="session")
def jpegs() -> list[bytes]:
    return synthetic_jpegs(8)
