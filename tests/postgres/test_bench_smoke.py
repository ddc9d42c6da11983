"""The PostgreSQL benchmark runs end to end on tiny sizes against the test server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_postgres.py"


def test_postgres_benchmark_runs_on_tiny_sizes(server_url: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--quick",
            "--url",
            server_url,
            "--json",
            str(tmp_path / "figures.json"),
        ],
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
    payload = json.loads((tmp_path / "figures.json").read_text(encoding="utf-8"))
    assert Path(payload["imported"]["eventvault"]).name == "__init__.py"
    figures = {figure["key"]: figure for figure in payload["figures"]}
    rates = {
        "append_one",
        "append_one/baseline",
        "append_one_eventsourcing",
        "append_threads",
        "append_threads_raw16",
        "append_processes",
        "read_all",
        "read_all/baseline",
        "read_all_eventsourcing",
    }
    ratios = {
        "append_one/ratio",
        "append_one_eventsourcing/ratio",
        "append_threads/ratio",
        "append_threads_raw16/ratio",
        "append_processes/ratio",
        "read_all/ratio",
        "read_all_eventsourcing/ratio",
        "read_all/eventsourcing",
    }
    assert set(figures) == rates | ratios
    assert all(figures[key]["value"] > 0 and figures[key]["samples"] for key in rates)
    assert figures["append_threads/ratio"]["value"] == pytest.approx(
        figures["append_threads"]["value"] / figures["append_one/baseline"]["value"]
    )
