"""core/ on the shared golden vectors, under CPython and under the real MicroPython binary."""

import json
import subprocess
from pathlib import Path

from core_checks import run

from dronecam.tools.firmware import tool
from support import seconds

HERE = Path(__file__).parent
VECTORS = HERE / "vectors.json"
SRC = HERE.parent.parent / "src"


def test_cpython_passes_the_golden_vectors():
    assert run(json.loads(VECTORS.read_text())) > 40


def test_micropython_passes_the_same_golden_vectors():
    result = subprocess.run(
        [tool("micropython"), str(HERE / "core_checks.py"), str(SRC), str(VECTORS)],
        capture_output=True,
        text=True,
        timeout=seconds(60),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "core checks passed" in result.stdout
