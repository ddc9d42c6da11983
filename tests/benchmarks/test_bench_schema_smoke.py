"""The schema registry's benchmark runs end to end on tiny sizes and prints every row."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_schema.py"


def test_schema_benchmark_runs_on_tiny_sizes(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--quick",
            "--plain",
            "--dir",
            str(tmp_path),
            "--allow-tmpfs",
            "--json",
            str(figures),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for row in (
        "1. one-event appends, SQLite",
        "2. 1,000-event appends, SQLite",
        "1m. one-event appends, memory",
        "3. 2,000 events, read_all + decode",
        "4. 2,000 events, Repository.get",
        "jsonschema-rs",
    ):
        assert row in done.stdout
    written = json.loads(figures.read_text())
    assert written["events"] == 2000
    assert {c["candidate"] for c in written["candidates"]} >= {"jsonschema-rs"}


def test_schema_benchmark_refuses_a_missing_directory(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--dir", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "does not exist" in done.stderr
