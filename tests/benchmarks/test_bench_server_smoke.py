"""bench_server.py runs end to end on tiny sizes and prints every row."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_server.py"


def test_the_server_benchmark_runs_and_reports_every_measure(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--plain", "--json", str(figures)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for row in (
        "1. appends of 1 event",
        "1b. appends of 100",
        "2. read_all",
        "3. append to SSE",
        "4. 256 asyncio",
        "5b. bare ASGI",
    ):
        assert row in done.stdout
    recorded = json.loads(figures.read_text())
    assert {"measure_1", "measure_1b", "measure_2", "measure_3", "measure_4"} <= set(recorded)
