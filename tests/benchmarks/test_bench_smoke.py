"""The core benchmark script runs end to end on tiny sizes, prints every row and writes JSON.

These tests check that the script works, not how fast anything is: `--quick` sizes are far
too small for figures that mean anything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_core.py"
QUICK_ROWS = (
    "1. append 1 event per commit, 1 thread",
    "2. append 1 event per call, 16 threads",
    "3. append 100 events per call",
    "4. read_all 2,000 events, decoded",
    "5. read_all 5,000 events: peak memory added",
)
KEYS = {"append_one", "append_threads", "append_batch", "read_all", "read_memory"}
REFERENCE_KEYS = {"append_one_eventsourcing", "read_all_eventsourcing"}


def _has_eventsourcing() -> bool:
    try:
        import eventsourcing  # noqa: F401
    except ImportError:
        return False
    return True


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture(scope="module")
def quick(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    workdir = tmp_path_factory.mktemp("bench")
    figures = workdir / "figures.json"
    completed = _run(
        "--quick", "--plain", "--allow-tmpfs", "--dir", str(workdir), "--json", str(figures)
    )
    return completed, figures


def test_quick_run_exits_zero(quick: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    completed, _ = quick
    assert completed.returncode == 0, completed.stderr


@pytest.mark.parametrize("label", QUICK_ROWS)
def test_quick_run_prints_an_eventvault_row_for_each_measure(
    quick: tuple[subprocess.CompletedProcess[str], Path], label: str
) -> None:
    completed, _ = quick
    rows = [line for line in completed.stdout.splitlines() if line.startswith(label)]
    assert any(" eventvault " in row and ("PASS" in row or "FAIL" in row) for row in rows), (
        completed.stdout
    )


@pytest.mark.skipif(not _has_eventsourcing(), reason="the eventsourcing library is not installed")
@pytest.mark.parametrize("label", [QUICK_ROWS[0], QUICK_ROWS[3]])
def test_quick_run_prints_the_eventsourcing_reference_rows(
    quick: tuple[subprocess.CompletedProcess[str], Path], label: str
) -> None:
    completed, _ = quick
    rows = [line for line in completed.stdout.splitlines() if line.startswith(label)]
    assert any("eventsourcing" in row and row.endswith("reference") for row in rows), (
        completed.stdout
    )


def test_quick_run_writes_every_figure_to_json(
    quick: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, figures = quick
    payload = json.loads(figures.read_text(encoding="utf-8"))
    results = {result["key"]: result for result in payload["results"]}
    expected = KEYS | (REFERENCE_KEYS if _has_eventsourcing() else set())
    assert set(results) == expected
    assert all(result["baseline"] >= 0 and result["value"] >= 0 for result in results.values())
    assert all(results[key]["value"] > 0 for key in expected - {"read_memory"})


def test_unknown_measure_number_is_refused_with_status_2() -> None:
    completed = _run("--quick", "--measures", "1,9")
    assert completed.returncode == 2
    assert "--measures" in completed.stderr


def test_zero_rounds_is_refused_with_status_2() -> None:
    completed = _run("--quick", "--rounds", "0")
    assert completed.returncode == 2
    assert "--rounds" in completed.stderr


def test_missing_benchmark_directory_is_refused_with_status_2(tmp_path: Path) -> None:
    completed = _run("--quick", "--dir", str(tmp_path / "missing"))
    assert completed.returncode == 2
    assert "does not exist" in completed.stderr
