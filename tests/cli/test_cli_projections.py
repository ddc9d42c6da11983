"""`eventvault projections ...`: list, status, rebuild, reset, retry, skip, and run under SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import eventvault
from eventvault import StreamState
from eventvault.projections import ProjectionRunner, projection_status
from tests.projections.helpers import append_activity, assert_exactly_once
from tests.projections.model import Counter, Totals, deposit

from .cli_harness import Cli

MODULE = "tests.projections.cli_module"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store_file(db: str) -> str:
    with eventvault.connect(db) as store:
        append_activity(store, 40)
        for amount in (1, 13, 2):
            store.append_to_stream("account-9", [deposit(amount)], expected_version=StreamState.ANY)
    return db


def test_list_names_each_projection_its_version_kind_and_events(cli: Cli, store_file: str) -> None:
    result = cli("projections", "list", "--module", MODULE, "--url", store_file)
    assert result.exit_code == 0, result.output
    for text in ("totals", "counter", "picky", "Deposited, Withdrawn", "the store (totals)"):
        assert text in result.output


def test_status_before_any_run_shows_them_stopped_with_the_whole_log_as_lag(
    cli: Cli, store_file: str
) -> None:
    result = cli("projections", "status", "--module", MODULE, "--url", store_file, "--json")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [(s["name"], s["state"], s["checkpoint"], s["lag_events"]) for s in lines] == [
        ("totals", "stopped", 0, 43),
        ("counter", "stopped", 0, 43),
        ("picky", "stopped", 0, 43),
    ]


def test_rebuild_applies_the_log_and_a_failure_is_shown_then_skipped(
    cli: Cli, store_file: str
) -> None:
    result = cli("projections", "rebuild", "totals", "--module", MODULE, "--url", store_file, "-y")
    assert result.exit_code == 0, result.output
    assert "rebuilt up to position 43" in result.output
    failed = cli("projections", "rebuild", "picky", "--module", MODULE, "--url", store_file, "-y")
    assert failed.exit_code == 1
    assert "stopped at account-9@1" in failed.output and "unlucky amount 13" in failed.output
    status = cli("projections", "status", "picky", "--module", MODULE, "--url", store_file)
    assert "failed" in status.output and "ValueError: unlucky amount 13" in status.output
    wrong = cli(
        "projections", "skip", "picky", "--position", "3", "--module", MODULE, "--url", store_file
    )
    assert wrong.exit_code == 3
    assert "failed at position 42, not 3" in wrong.output
    assert "projections status" in wrong.output  # the hint
    skipped = cli(
        "projections", "skip", "picky", "--position", "42", "--module", MODULE, "--url", store_file
    )
    assert skipped.exit_code == 0, skipped.output
    assert "skipped Deposited account-9@1 (global 42" in skipped.output
    again = cli("projections", "retry", "picky", "--module", MODULE, "--url", store_file)
    assert again.exit_code == 3 and "has not failed" in again.output


def test_reset_asks_first_and_empties_the_read_model(cli: Cli, store_file: str) -> None:
    assert (
        cli("projections", "rebuild", "totals", "-m", MODULE, "-u", store_file, "-y").exit_code == 0
    )
    declined = cli("projections", "reset", "totals", "-m", MODULE, "-u", store_file, input="n\n")
    assert declined.exit_code == 1
    with eventvault.connect(store_file) as store:
        assert store.query("SELECT count(*) FROM totals") != [(0,)]
    done = cli("projections", "reset", "totals", "-m", MODULE, "-u", store_file, "--yes")
    assert done.exit_code == 0 and "its checkpoint was 43" in done.output
    with eventvault.connect(store_file) as store:
        assert store.query("SELECT count(*) FROM totals") == [(0,)]
        [status] = projection_status(store, [Totals()])
        assert status.checkpoint == 0


def test_retry_after_a_fix_and_unknown_names_and_modules(cli: Cli, store_file: str) -> None:
    cli("projections", "rebuild", "picky", "-m", MODULE, "-u", store_file, "-y")
    retried = cli("projections", "retry", "picky", "-m", MODULE, "-u", store_file)
    assert retried.exit_code == 0 and "retrying account-9@1 (global 42)" in retried.output
    unknown = cli("projections", "retry", "nope", "-m", MODULE, "-u", store_file)
    assert unknown.exit_code == 4
    assert "no projection named 'nope' (known: counter, picky, totals)" in unknown.output
    missing = cli("projections", "list", "-m", "no.such.module", "-u", store_file)
    assert missing.exit_code == 2 and "cannot import 'no.such.module'" in missing.output
    not_a_list = cli("projections", "list", "-m", f"{MODULE}:NOT_A_LIST", "-u", store_file)
    assert not_a_list.exit_code == 2 and "has no NOT_A_LIST list" in not_a_list.output


def test_a_store_that_does_not_exist_is_not_created(cli: Cli, tmp_path: Path) -> None:
    result = cli("projections", "status", "-m", MODULE, "-u", str(tmp_path / "none.db"))
    assert result.exit_code == 4
    assert not (tmp_path / "none.db").exists()


def test_migrate_creates_the_projection_tables(cli: Cli, store_file: str) -> None:
    result = cli("migrate", store_file)
    assert result.exit_code == 0, result.output
    assert "projections" in result.output


def test_run_keeps_the_read_models_live_and_stops_cleanly_on_sigterm(store_file: str) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "eventvault.cli",
            "projections",
            "run",
            "totals",
            "counter",
            "--module",
            MODULE,
            "--url",
            store_file,
            "--lease",
            "1",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with eventvault.connect(store_file) as store:
            deadline = time.monotonic() + 30
            append_activity(store, 25, start=40)
            while True:
                statuses = projection_status(store, [Totals(), Counter()])
                if all(s.state.value == "live" and s.lag_events == 0 for s in statuses):
                    break
                assert time.monotonic() < deadline, statuses
                time.sleep(0.1)
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=30)
            assert process.returncode == 0, stderr
            assert "lease taken" in stderr  # logged, stderr not being a terminal
            [totals, counter] = projection_status(store, [Totals(), Counter()])
            assert totals.state.value == counter.state.value == "stopped"
            assert_exactly_once(store, None)
            # The lease was given back: another runner starts at once.
            assert ProjectionRunner(store, [Totals()], lease_seconds=60).catch_up(5)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
