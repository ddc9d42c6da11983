"""The PostgreSQL benchmark runs end to end on tiny sizes against the test server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_postgres.py"


def test_postgres_benchmark_runs_on_tiny_sizes(server_url: str) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--url", server_url],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for row in (
        "1. append 1 event/commit",
        "2. append 1 event/call, 16 threads",
        "3. append 1 event/call, 4 procs x 4 threads",
        "4. read_all",
    ):
        assert row in done.stdout
