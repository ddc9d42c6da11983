"""Exactly once across crashes, and ownership across runners that die or stall.

The runner is killed with SIGKILL at random points (catching up a backlog, live, inside a
batch's transaction) while a writer keeps appending; afterwards the read models equal the log
and a counting projection counted every event once. Three runners compete for the same
projections while the active one is killed or frozen (SIGSTOP); another takes over within five
seconds of a kill, a frozen one commits nothing when it wakes, and the read model equals one
rebuilt from scratch.
"""

from __future__ import annotations

import contextlib
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import eventvault
from eventvault import EventStore
from eventvault.projections import ProjectionRunner, projection_status
from eventvault.store.database import connect_database

from .conftest import pg_url
from .helpers import TOTALS, append_burst, assert_exactly_once, located, rows
from .model import Counter, Totals

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def start(*args: str, log: Path | None = None) -> subprocess.Popen[str]:
    """Start a process of `_processes`; its log (stderr) goes to `log`, or nowhere."""
    with contextlib.ExitStack() as files:
        stderr = subprocess.DEVNULL if log is None else files.enter_context(log.open("a"))
        return subprocess.Popen(
            [sys.executable, "-m", "tests.projections._processes", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )


def stopped(process: subprocess.Popen[str], log: Path, timeout: float = 30.0) -> int:
    """The exit status of a runner asked to stop; if it does not end in time, the failure
    shows its log and the stacks of its threads (written on SIGUSR1)."""
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGUSR1)
        time.sleep(1.0)
        pytest.fail(f"runner (pid {process.pid}) did not stop in {timeout} s:\n{log.read_text()}")


def kill(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGCONT)
        process.kill()
    process.wait(30)
    if process.stdout is not None:
        process.stdout.close()


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        kill(process)


def locations(name: str, tmp_path: Path, schemas: Callable[[], str]) -> tuple[str, str | None]:
    if name == "sqlite":
        return str(tmp_path / "store.db"), None
    if name == "sqlite-beside":
        return str(tmp_path / "store.db"), f"sqlite:///{tmp_path / 'reports.db'}"
    return pg_url(schemas(), auto_migrate="true"), None


def counter_owner(store: EventStore, url: str | None) -> str | None:
    [status] = projection_status(store, [located(Counter, url)()])
    return status.owner


@pytest.mark.parametrize("where", ["sqlite", "postgres", "sqlite-beside"])
def test_sigkill_at_random_points_never_loses_or_repeats_an_effect(
    where: str,
    tmp_path: Path,
    pg_schemas: Callable[[], str],
    processes: list[subprocess.Popen[str]],
) -> None:
    store_url, read_model = locations(where, tmp_path, pg_schemas)
    rng = random.Random(1234)
    kills = {"catching up": 0, "live": 0}
    with eventvault.connect(store_url) as store:
        writer = start("writer", store_url, "400", "100000", "0.01")
        processes.append(writer)
        appended = 0
        for round_index in range(12):
            if round_index % 2 == 0:
                # A backlog: the next runner is killed while it catches up, inside a batch.
                append_burst(store, 1500, start=appended)
                appended += 1500
            runner = start("runner", store_url, read_model or "-", f"r{round_index}", "1.0")
            processes.append(runner)
            assert runner.stdout is not None and runner.stdout.readline() == "started\n"
            time.sleep(rng.uniform(0.05, 0.6) if round_index % 2 == 0 else rng.uniform(0.8, 1.5))
            [status] = projection_status(store, [located(Counter, read_model)()])
            kills["catching up" if status.lag_events > 50 else "live"] += 1
            runner.kill()
            runner.wait(30)
        writer.wait(120)
        assert writer.returncode == 0
        final = ProjectionRunner(
            store, [located(Totals, read_model)(), located(Counter, read_model)()]
        )
        assert final.catch_up(120)
        assert_exactly_once(store, read_model)
    assert kills["catching up"] >= 3 and kills["live"] >= 1, kills


@pytest.mark.parametrize("where", ["sqlite", "postgres"])
def test_three_runners_one_active_takeover_within_five_seconds_and_no_commit_after_a_pause(
    where: str,
    tmp_path: Path,
    pg_schemas: Callable[[], str],
    processes: list[subprocess.Popen[str]],
) -> None:
    store_url, read_model = locations(where, tmp_path, pg_schemas)
    with eventvault.connect(store_url) as store:
        append_burst(store, 500)
        writer = start("writer", store_url, "1500", "500", "0.01")
        processes.append(writer)
        runners: dict[str, subprocess.Popen[str]] = {}
        serial = 0

        def add_runner() -> None:
            nonlocal serial
            owner = f"runner-{serial}"
            serial += 1
            process = start(
                "runner", store_url, read_model or "-", owner, "3.0", log=tmp_path / f"{owner}.log"
            )
            processes.append(process)
            assert process.stdout is not None and process.stdout.readline() == "started\n"
            runners[owner] = process

        for _ in range(3):
            add_runner()
        takeovers: list[float] = []
        for round_index in range(6):
            deadline = time.monotonic() + 15
            while (owner := counter_owner(store, read_model)) is None:
                assert time.monotonic() < deadline, "no runner took the projection"
                time.sleep(0.05)
            active = runners.pop(owner)
            if round_index % 2 == 0:
                active.kill()
                active.wait(30)
                killed_at = time.monotonic()
                while counter_owner(store, read_model) in (None, owner):
                    assert time.monotonic() - killed_at < 10, "nobody took over"
                    time.sleep(0.05)
                takeovers.append(time.monotonic() - killed_at)
                add_runner()
            else:
                # Frozen past its lease: it must not commit when it wakes.
                active.send_signal(signal.SIGSTOP)
                time.sleep(4.5)
                active.send_signal(signal.SIGCONT)
                runners[owner] = active
            time.sleep(0.5)
        writer.wait(120)
        assert writer.returncode == 0
        # SIGTERM: every runner ends cleanly after its current batch.
        for process in runners.values():
            process.send_signal(signal.SIGTERM)
        for owner, process in runners.items():
            assert stopped(process, tmp_path / f"{owner}.log") == 0
        # One more runner brings the read model to the head (another may have held it last).
        final = ProjectionRunner(
            store, [located(Totals, read_model)(), located(Counter, read_model)()]
        )
        assert final.catch_up(60)
        assert_exactly_once(store, read_model)
        # And it equals a read model rebuilt from scratch elsewhere.
        rebuilt_at = f"sqlite:///{tmp_path / 'rebuilt.db'}"
        rebuilt = located(Totals, rebuilt_at)()
        assert ProjectionRunner(store, [rebuilt]).catch_up(60)
        with connect_database(rebuilt_at) as db:
            assert rows(store, located(Totals, read_model)(), TOTALS) == db.query(TOTALS)
    assert max(takeovers) < 5.0, takeovers
    assert len(takeovers) == 3
