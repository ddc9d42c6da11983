"""Tables printed into a pipe or a file keep every value whole: nothing is cut at 80 columns."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Final

from typer.testing import CliRunner

from eventvault.cli import app

from .cli_harness import SeedEvent, seed

LONG_STREAM: Final = "account-" + "x" * 150 + "-end"
LONG_TYPE: Final = "AccountOpenedWithAVeryLongEventTypeNameThatGoesOnAndOn" * 2
PIPED_ENV: Final = {"COLUMNS": "80", "EVENTVAULT_URL": None}


def _seed_long(db: str) -> None:
    short: SeedEvent = ("order-7", "OrderPlaced", {"items": 3})
    long: SeedEvent = (LONG_STREAM, LONG_TYPE, {"owner": "Ada"})
    seed(db, [short] * 12 + [long] * 11)


def _piped(*args: str) -> str:
    """Run the command line with stdout captured (not a terminal) and COLUMNS=80."""
    result = CliRunner(env=PIPED_ENV).invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def _rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.splitlines() if "{" in line]


def test_log_into_a_pipe_prints_whole_stream_names_positions_and_types(db: str) -> None:
    _seed_long(db)
    rows = _rows(_piped("log", "--url", db))
    assert [row[0] for row in rows] == [str(n) for n in range(1, 24)]
    assert [row[1] for row in rows[12:]] == [f"{LONG_STREAM}@{n}" for n in range(11)]
    assert {row[2] for row in rows[12:]} == {LONG_TYPE}
    assert "…" not in "".join(row[1] + row[2] for row in rows)


def test_read_into_a_pipe_prints_whole_positions_and_types(db: str) -> None:
    _seed_long(db)
    rows = _rows(_piped("read", LONG_STREAM, "--url", db))
    assert [row[:3] for row in rows] == [[str(n), str(n + 13), LONG_TYPE] for n in range(11)]


def test_streams_into_a_pipe_prints_each_whole_name_on_one_line(db: str) -> None:
    _seed_long(db)
    output = _piped("streams", "--url", db)
    [line] = [line for line in output.splitlines() if LONG_STREAM in line]
    assert line.split() == [LONG_STREAM, "11", "10", "23"]


def test_data_is_still_abbreviated_in_a_pipe(db: str) -> None:
    seed(db, [("note-1", "Noted", {"text": "y" * 200})])
    (row,) = _rows(_piped("read", "note-1", "--url", db))
    assert row[-1].endswith("…")
    assert len(row[-1]) == 60


def test_log_through_a_real_pipe_keeps_whole_values(db: str, tmp_path: Path) -> None:
    _seed_long(db)
    env = {key: value for key, value in os.environ.items() if key != "EVENTVAULT_URL"}
    env["COLUMNS"] = "80"
    done = subprocess.run(
        [sys.executable, "-m", "eventvault.cli", "log", "--url", db],
        capture_output=True,  # stdout is a pipe, as in `eventvault log | grep ...`
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = _rows(done.stdout)
    assert [row[1] for row in rows[12:]] == [f"{LONG_STREAM}@{n}" for n in range(11)]
