"""The hand-off ceiling script runs end to end on tiny sizes and reports both rows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_handoff.py"


def test_handoff_script_reports_the_raw_rate_and_both_ceilings() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--threads", "4", "--calls", "20", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("raw INSERT+COMMIT on this disk:")
    assert "0 us of Python per call" in lines[1]
    assert "10 us of Python per call" in lines[2]
    assert all("x raw" in line for line in lines[1:3])
