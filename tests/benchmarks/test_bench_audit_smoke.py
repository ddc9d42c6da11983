"""The audit benchmark runs end to end on tiny sizes and prints every row (its figures, at
`--quick` sizes, mean nothing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_audit.py"


def test_a_quick_run_prints_every_measure_and_writes_json(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    completed = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--quick",
            "--plain",
            "--allow-tmpfs",
            "--dir",
            str(tmp_path),
            "--json",
            str(figures),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    for row in ("1. 40 one-event appends", "2. 2 appends of 100 events", "3. verify of 3,000"):
        assert row in completed.stdout
    assert "4. inclusion proof of a random event of 3,000" in completed.stdout
    for row in (
        "4a. the same proofs' CPU time",
        "4b. baseline: one SELECT",
        "4c. baseline: a chunk",
    ):
        assert row in completed.stdout
    results = json.loads(figures.read_text())["results"]
    assert {result["key"] for result in results} == {
        "append_one",
        "append_batch",
        "verify",
        "prove",
        "prove_cpu",
        "baseline_select",
        "baseline_hashing",
        "baseline_hashing_cpu",
    }
    # The baselines are printed to read measure 4 by; only the measures have targets.
    assert {result["key"] for result in results if not result["reference"]} == {
        "append_one",
        "append_batch",
        "verify",
        "prove",
    }
    assert "proof_gc_passes: " in completed.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["figures.json"]
