"""The runner: catch-up then live, exactly-once effects, failures, retry, skip, reset, versions,
sinks, fencing; on every engine, with read models in the store's database and beside it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from eventvault import EventStore, StreamState
from eventvault.errors import LeaseLostError, ProjectionStateError, StorageError
from eventvault.projections import (
    ProjectionRunner,
    ProjectionState,
    projection_status,
    reset,
    retry,
    skip,
)
from eventvault.projections.state import read_history
from eventvault.projections.worker import Worker

from .helpers import append_activity, database_of, expected_totals, located, rows, run_to_head
from .model import Collector, Counter, Ledger, Picky, Totals, deposit, withdraw

TOTALS = "SELECT stream, balance, events FROM {schema}.totals ORDER BY stream"


def test_catches_up_then_applies_live_events_exactly_once(
    store: EventStore, read_model_url: str | None
) -> None:
    totals = located(Totals, read_model_url)()
    counter = located(Counter, read_model_url)()
    append_activity(store, 230)
    runner = ProjectionRunner(store, [totals, counter], lease_seconds=1.0)
    runner.start()
    try:
        assert runner.wait_until_caught_up(30)
        assert [tuple(r) for r in rows(store, totals, TOTALS)] == expected_totals(store)
        append_activity(store, 40, start=230)
        assert runner.wait_until_caught_up(30)
        assert [tuple(r) for r in rows(store, totals, TOTALS)] == expected_totals(store)
        counts = rows(
            store, counter, "SELECT count(*), min(times), max(times) FROM {schema}.applied"
        )
        assert tuple(counts[0]) == (270, 1, 1)
    finally:
        runner.stop()
        runner.join()


def test_live_events_are_applied_when_the_store_wakes_the_runner(store: EventStore) -> None:
    runner = ProjectionRunner(store, [Totals()], poll_interval=5.0)
    runner.start()
    try:
        assert runner.wait_until_caught_up(30)
        store.append_to_stream("account-1", [deposit(5)], expected_version=StreamState.ANY)
        started = time.monotonic()
        # The poll interval is 5 s: only the store's wake-up makes this quick.
        assert runner.wait_until_caught_up(4)
        assert time.monotonic() - started < 4
        assert store.query("SELECT balance FROM {schema}.totals") == [(5,)]
    finally:
        runner.stop()
        runner.join()


def test_a_failing_handler_stops_its_projection_at_that_event_and_the_others_go_on(
    store: EventStore, read_model_url: str | None
) -> None:
    picky = located(Picky, read_model_url)()
    totals = Totals()
    amounts = [1, 2, 3, 13, 4, 5]
    for amount in amounts:
        store.append_to_stream("account-1", [deposit(amount)], expected_version=StreamState.ANY)
    run_to_head(store, picky, totals)
    # Everything before the failing event is applied and kept; nothing after it.
    assert sorted(rows(store, picky, "SELECT amount FROM {schema}.seen_v1")) == [(1,), (2,), (3,)]
    assert store.query("SELECT balance FROM {schema}.totals") == [(sum(amounts),)]
    [status, _] = projection_status(store, [picky, totals])
    assert status.state is ProjectionState.FAILED
    assert status.checkpoint == 3
    assert status.lag_events == 3  # the failed event and those after it
    assert status.failure is not None
    assert (status.failure.global_position, status.failure.stream_position) == (4, 3)
    assert status.failure.event_type == "Deposited"
    assert status.last_error == "ValueError: unlucky amount 13"
    assert "unlucky amount" in status.failure.details  # the traceback
    # A runner started again stays at the failed event.
    run_to_head(store, picky)
    assert len(rows(store, picky, "SELECT amount FROM {schema}.seen_v1")) == 3


def test_retry_resumes_at_the_failed_event_after_a_fix(
    store: EventStore, read_model_url: str | None
) -> None:
    picky = located(Picky, read_model_url)()
    for amount in (1, 13, 2):
        store.append_to_stream("account-1", [deposit(amount)], expected_version=StreamState.ANY)
    run_to_head(store, picky)
    picky.refuse = 99  # the fix
    database = database_of(store, picky)
    cleared = retry(database, picky, actor="test")
    assert cleared.global_position == 2
    run_to_head(store, picky)
    assert sorted(rows(store, picky, "SELECT amount FROM {schema}.seen_v1")) == [(1,), (2,), (13,)]
    assert [e.action for e in read_history(database, "picky")] == ["failed", "retry", "switch"]
    with pytest.raises(ProjectionStateError, match="has not failed"):
        retry(database, picky, actor="test")


def test_skip_passes_the_failed_event_and_records_the_skip(
    store: EventStore, read_model_url: str | None
) -> None:
    picky = located(Picky, read_model_url)()
    for amount in (1, 13, 2):
        store.append_to_stream("account-1", [deposit(amount)], expected_version=StreamState.ANY)
    run_to_head(store, picky)
    database = database_of(store, picky)
    with pytest.raises(ProjectionStateError, match="failed at position 2, not 3"):
        skip(database, picky, actor="ops", position=3)
    skipped = skip(database, picky, actor="ops", position=2)
    run_to_head(store, picky)
    assert sorted(rows(store, picky, "SELECT amount FROM {schema}.seen_v1")) == [(1,), (2,)]
    history = read_history(database, "picky")
    [entry] = [e for e in history if e.action == "skip"]
    assert (entry.global_position, entry.event_id) == (2, skipped.event_id)
    assert "by ops" in entry.detail and "unlucky amount 13" in entry.detail
    [status] = projection_status(store, [picky])
    assert status.state is ProjectionState.STOPPED and status.failure is None


def test_a_failure_is_resolved_by_a_running_runner_without_a_restart(store: EventStore) -> None:
    picky = Picky()
    runner = ProjectionRunner(store, [picky], lease_seconds=1.0)
    runner.start()
    try:
        for amount in (1, 13, 2):
            store.append_to_stream("account-1", [deposit(amount)], expected_version=StreamState.ANY)
        assert runner.wait_until_caught_up(30)
        time.sleep(0.5)  # past a renewal of the lease, which reports how far the runner looked
        [status] = runner.status()
        assert status.state is ProjectionState.FAILED
        assert (status.checkpoint, status.lag_events) == (1, 2)  # it looks no further
        skip(store, picky, actor="ops")
        deadline = time.monotonic() + 30
        while store.query("SELECT count(*) FROM {schema}.seen_v1") != [(2,)]:
            assert time.monotonic() < deadline, "the runner did not resume after the skip"
            time.sleep(0.05)
    finally:
        runner.stop()
        runner.join()


def test_reset_empties_the_read_model_and_it_is_rebuilt_from_the_start(
    store: EventStore, read_model_url: str | None
) -> None:
    totals = located(Totals, read_model_url)()
    append_activity(store, 60)
    run_to_head(store, totals)
    database = database_of(store, totals)
    assert reset(database, totals, actor="test") == store.head_position()
    assert rows(store, totals, "SELECT count(*) FROM {schema}.totals") == [(0,)]
    run_to_head(store, totals)
    assert [tuple(r) for r in rows(store, totals, TOTALS)] == expected_totals(store)


def test_a_new_version_builds_beside_the_old_one_which_serves_until_the_switch(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    append_activity(store, 120)
    run_to_head(store, Totals())
    before = store.query(TOTALS)

    class TotalsV2(Totals):
        version = 2
        batch_size = 10

    version_2 = TotalsV2()
    runner = ProjectionRunner(store, [version_2], lease_seconds=1.0)
    gate = threading.Event()
    built_some = threading.Event()
    original: Callable[..., None] = Worker._transaction
    batches = 0

    def hold_after_two_batches(worker: Worker, *args: object, **kwargs: object) -> None:
        nonlocal batches
        if worker.projection is version_2:
            batches += 1
            if batches == 3:
                built_some.set()
                gate.wait(30)
        original(worker, *args, **kwargs)

    monkeypatch.setattr(Worker, "_transaction", hold_after_two_batches)
    runner.start()
    try:
        assert built_some.wait(30)
        # Version 2 is half built beside version 1, and queries read version 1, whole.
        assert store.query("SELECT count(*) FROM {schema}.totals_v2")[0][0] > 0
        assert store.query(TOTALS) == before
        [status] = runner.status()
        assert (status.version, status.active_version) == (2, 1)
        gate.set()
        assert runner.wait_until_caught_up(30)
    finally:
        gate.set()
        runner.stop()
        runner.join()
    assert [tuple(r) for r in store.query(TOTALS)] == expected_totals(store)
    # Version 1's tables are gone; version 2 is the one queries read.
    assert store.query("SELECT count(*) FROM {schema}.totals_v2") == [(len(before),)]
    with pytest.raises(StorageError, match="totals_v1"):
        store.query("SELECT * FROM {schema}.totals_v1")
    [status] = projection_status(store, [TotalsV2()])
    assert status.active_version == 2
    # A runner of the old version retires instead of writing.
    old = ProjectionRunner(store, [Totals()], lease_seconds=1.0)
    assert old.catch_up(10)
    assert [w[1] for w in old.workers()] == ["stopped"]
    assert [tuple(r) for r in store.query(TOTALS)] == expected_totals(store)


def test_a_sink_gets_every_event_with_its_id_and_position_and_stops_at_a_failure(
    store: EventStore,
) -> None:
    sink = Collector()
    for amount in range(1, 21):
        store.append_to_stream("account-1", [deposit(amount)], expected_version=StreamState.ANY)
    sink.fail_at = 15
    run_to_head(store, sink)
    assert [position for position, _ in sink.received] == list(range(1, 15))
    [status] = projection_status(store, [sink])
    assert status.kind == "sink" and status.state is ProjectionState.FAILED
    assert status.checkpoint == 14
    sink.fail_at = None
    retry(store, sink, actor="test")
    run_to_head(store, sink)
    assert [position for position, _ in sink.received] == list(range(1, 21))


def test_a_runner_that_lost_its_lease_while_paused_commits_nothing(store: EventStore) -> None:
    append_activity(store, 30)
    paused = threading.Event()
    resume = threading.Event()
    outcome: list[BaseException] = []
    first = ProjectionRunner(store, [Counter()], lease_seconds=0.5, owner="first")
    first.start()
    assert first.wait_until_caught_up(30)
    worker = first._workers[0]
    original: Callable[..., None] = worker._transaction

    def pause_then_commit(*args: object, **kwargs: object) -> None:
        paused.set()
        resume.wait(30)  # a long GC pause, or SIGSTOP, before the commit
        try:
            original(*args, **kwargs)
        except LeaseLostError as exc:
            outcome.append(exc)
            raise

    worker._transaction = pause_then_commit  # type: ignore[method-assign]
    append_activity(store, 10, start=30)
    assert paused.wait(30)
    second = ProjectionRunner(store, [Counter()], lease_seconds=0.5, owner="second")
    second.start()
    try:
        assert second.wait_until_caught_up(30)
        resume.set()
        deadline = time.monotonic() + 10
        while not outcome:
            assert time.monotonic() < deadline, "the paused runner's commit was not refused"
            time.sleep(0.02)
    finally:
        resume.set()
        first.stop()
        second.stop()
        first.join()
        second.join()
    assert isinstance(outcome[0], LeaseLostError)
    counts = store.query("SELECT count(*), min(times), max(times) FROM {schema}.applied")
    assert tuple(counts[0]) == (40, 1, 1)


def test_stop_releases_the_lease_so_another_runner_takes_over_at_once(store: EventStore) -> None:
    append_activity(store, 10)
    first = ProjectionRunner(store, [Counter()], lease_seconds=60, owner="first")
    assert first.catch_up(30)
    second = ProjectionRunner(store, [Counter()], lease_seconds=60, owner="second")
    second.start()
    try:
        append_activity(store, 5, start=10)
        assert second.wait_until_caught_up(10)
        [status] = second.status()
        assert status.owner == "second"
    finally:
        second.stop()
        second.join()


def test_status_shows_lag_rate_owner_and_state(store: EventStore) -> None:
    append_activity(store, 50)
    totals = Totals()
    [before] = projection_status(store, [totals])
    assert before.state is ProjectionState.STOPPED
    assert (before.checkpoint, before.lag_events, before.owner) == (0, 50, None)
    assert before.lag_seconds > 0
    runner = ProjectionRunner(store, [totals], owner="here")
    runner.start()
    try:
        assert runner.wait_until_caught_up(30)
        [live] = runner.status()
        assert live.state is ProjectionState.LIVE
        assert (live.checkpoint, live.lag_events, live.lag_seconds) == (50, 0, 0.0)
        assert live.owner == "here" and live.lease_expires_at is not None
        assert live.events_per_second > 0
        assert live.to_dict()["state"] == "live"
    finally:
        runner.stop()
        runner.join()


def test_a_table_that_cannot_be_created_is_reported_by_status_and_retried(
    store: EventStore,
) -> None:
    class Broken(Counter):
        name = "broken"
        tables = {"broken": "CREATE TABLE {broken} (this is not sql"}

    runner = ProjectionRunner(store, [Broken()], lease_seconds=1.0)
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            [status] = runner.status()
            if status.runner_error is not None:
                break
            assert time.monotonic() < deadline, status
            time.sleep(0.05)
        assert status.state is ProjectionState.RUNNING
        assert status.last_error == status.runner_error
        assert "StorageError" in status.runner_error and "syntax error" in status.runner_error
    finally:
        runner.stop()
        runner.join()


def test_queued_writes_run_in_order_before_reads_and_the_commit(
    store: EventStore, read_model_url: str | None
) -> None:
    ledger = located(Ledger, read_model_url)()
    for n in range(1, 121):
        event = withdraw(1) if n % 10 == 0 else deposit(n)
        store.append_to_stream("account-1", [event], expected_version=StreamState.ANY)
    run_to_head(store, ledger)
    assert rows(store, ledger, "SELECT count(*) FROM {schema}.ledger") == [(108,)]
    counts = rows(store, ledger, "SELECT position, deposits FROM {schema}.counts ORDER BY 1")
    assert [tuple(r) for r in counts] == [(n, n - n // 10) for n in range(10, 121, 10)]


def test_a_failing_queued_write_stops_the_projection_at_the_event_that_queued_it(
    store: EventStore, read_model_url: str | None
) -> None:
    ledger = located(Ledger, read_model_url)()
    for amount in (1, 2, 3, 2, 5):  # the second 2 breaks the ledger's key, at position 4
        store.append_to_stream("account-1", [deposit(amount)], expected_version=StreamState.ANY)
    run_to_head(store, ledger)
    [status] = projection_status(store, [ledger])
    assert status.state is ProjectionState.FAILED
    assert status.failure is not None and status.failure.global_position == 4
    assert status.checkpoint == 3
    applied = rows(store, ledger, "SELECT amount FROM {schema}.ledger_v1 ORDER BY 1")
    assert [tuple(r) for r in applied] == [(1,), (2,), (3,)]
