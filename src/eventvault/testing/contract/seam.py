"""Contract: storage beside the events (the seam): component migrations and transactions.

A transaction that writes component rows and appends events commits all of it or none, also
when the process is killed half-way; concurrent ordinary appends never interleave with it
wrongly; its appends keep every guarantee of an ordinary append.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from eventvault import EventStore, NewEvent, StreamState
from eventvault.errors import (
    DuplicateEventIdError,
    InvalidArgumentError,
    StorageError,
    StoreClosedError,
    TransactionUsageError,
    WrongExpectedVersionError,
)
from eventvault.serialization import verify_chain
from eventvault.store.seam import Component, Dialect, Migration, Transaction
from eventvault.testing.contract.base import ContractBase, EngineSpec, shared_storage

__all__ = ["COUNTS", "COUNT_QUERY", "SeamContract", "bump", "count_of"]


def _component(name: str, *versions: dict[Dialect, tuple[str, ...]]) -> Component:
    return Component(
        name,
        {
            dialect: tuple(
                Migration(number, version[dialect]) for number, version in enumerate(versions, 1)
            )
            for dialect in ("sqlite", "postgresql")
        },
    )


_COUNTS_V1: dict[Dialect, tuple[str, ...]] = {
    "sqlite": ("CREATE TABLE contract_counts (name TEXT PRIMARY KEY, n INTEGER NOT NULL)",),
    "postgresql": (
        "CREATE TABLE {schema}.contract_counts (name text PRIMARY KEY, n bigint NOT NULL)",
    ),
}
_COUNTS_V2: dict[Dialect, tuple[str, ...]] = {
    "sqlite": ("ALTER TABLE contract_counts ADD COLUMN note TEXT",),
    "postgresql": ("ALTER TABLE {schema}.contract_counts ADD COLUMN note text",),
}

COUNTS = _component("contract_counts", _COUNTS_V1)
"""A component of the contract suite: one table of named counters."""
_COUNTS_UPGRADED = _component("contract_counts", _COUNTS_V1, _COUNTS_V2)

_BUMP: dict[Dialect, str] = {
    "sqlite": (
        "INSERT INTO contract_counts (name, n) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET n = n + excluded.n"
    ),
    "postgresql": (
        "INSERT INTO {schema}.contract_counts (name, n) VALUES (%s, %s) "
        "ON CONFLICT (name) DO UPDATE SET n = contract_counts.n + EXCLUDED.n"
    ),
}
COUNT_QUERY: dict[Dialect, str] = {
    "sqlite": "SELECT n FROM contract_counts WHERE name = ?",
    "postgresql": "SELECT n FROM {schema}.contract_counts WHERE name = %s",
}


def bump(tx: Transaction, name: str, by: int = 1) -> None:
    """Add `by` to the counter `name` in the transaction."""
    tx.execute(_BUMP[tx.dialect], (name, by))


def count_of(store: EventStore, name: str) -> int:
    """The committed value of the counter `name` (0 when it has none)."""
    rows = store.query(COUNT_QUERY[store.dialect], (name,))
    return int(rows[0][0]) if rows else 0


def _tx_count(tx: Transaction, name: str) -> int:
    rows = tx.fetch(COUNT_QUERY[tx.dialect], (name,))
    return int(rows[0][0]) if rows else 0


class _Boom(Exception):
    pass


class SeamContract(ContractBase):
    """Component tables and transactions beside the events."""

    # -- components and their migrations ----------------------------------------------------

    def test_using_a_component_creates_its_tables_and_records_the_version(
        self, store: EventStore
    ) -> None:
        store.use(COUNTS)
        store.use(COUNTS)
        assert store.component_versions()["contract_counts"] == 1
        assert count_of(store, "none") == 0

    def test_a_newer_version_of_a_component_applies_only_what_is_missing(
        self, store: EventStore, engine: EngineSpec
    ) -> None:
        store.use(COUNTS)
        store.run_transaction(lambda tx: bump(tx, "kept", 3))
        store.use(_COUNTS_UPGRADED)  # the same store object: already in use, nothing to do
        assert store.component_versions()["contract_counts"] == 1
        if not engine.durable:
            return
        store.close()
        with engine.open() as reopened:
            reopened.use(_COUNTS_UPGRADED)
            assert reopened.component_versions()["contract_counts"] == 2
            assert count_of(reopened, "kept") == 3
            note = {
                "sqlite": "SELECT note FROM contract_counts",
                "postgresql": ("SELECT note FROM {schema}.contract_counts"),
            }[reopened.dialect]
            assert reopened.query(note) == [(None,)]

    def test_a_component_declared_wrongly_is_refused(self) -> None:
        with pytest.raises(InvalidArgumentError, match="lower-case identifier"):
            Component("Bad Name", COUNTS.migrations)
        with pytest.raises(InvalidArgumentError, match="without gaps"):
            Component("gaps", {"sqlite": (Migration(2, ()),), "postgresql": (Migration(2, ()),)})
        with pytest.raises(InvalidArgumentError, match="without gaps"):
            Component("one_dialect", {"sqlite": COUNTS.migrations["sqlite"]})

    def test_processes_migrating_one_store_at_once_apply_each_version_once(
        self, engine: EngineSpec
    ) -> None:
        shared_storage(engine)
        children = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "eventvault.testing._workers",
                    "use-counts",
                    engine.url,
                    "-",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        for child in children:
            _, err = child.communicate(timeout=120)
            assert child.returncode == 0, err
        with engine.open() as store:
            assert store.component_versions()["contract_counts"] == 1

    # -- all or nothing ----------------------------------------------------------------------

    def test_rows_and_events_of_a_transaction_commit_together(self, store: EventStore) -> None:
        store.use(COUNTS)

        def work(tx: Transaction) -> int:
            bump(tx, "orders", 2)
            result = tx.append_to_stream(
                "order-1",
                [NewEvent("Placed", {"n": 1}), NewEvent("Paid", {"n": 2})],
                expected_version=StreamState.NO_STREAM,
            )
            assert _tx_count(tx, "orders") == 2  # the transaction reads its own writes
            assert tx.get_stream_version("order-1") == 1
            return result.global_position

        last = store.run_transaction(work)
        assert count_of(store, "orders") == 2
        assert [e.event_type for e in store.read_stream("order-1")] == ["Placed", "Paid"]
        assert store.head_position() == last
        assert verify_chain(store.export_events()) == 2

    def test_a_transaction_whose_work_raises_leaves_nothing(self, store: EventStore) -> None:
        store.use(COUNTS)
        store.append_to_stream(
            "order-1", [NewEvent("Placed", {})], expected_version=StreamState.NO_STREAM
        )

        def work(tx: Transaction) -> None:
            bump(tx, "orders", 5)
            tx.append_to_stream("order-1", [NewEvent("Paid", {})], expected_version=0)
            tx.append_to_stream("audit-1", [NewEvent("Seen", {})], expected_version=StreamState.ANY)
            raise _Boom("after the writes")

        with pytest.raises(_Boom):
            store.run_transaction(work)
        assert count_of(store, "orders") == 0
        assert store.get_stream_version("order-1") == 0
        assert store.get_stream_version("audit-1") is None
        # The store goes on: the next append takes the next position, with no gap in the chain.
        result = store.append_to_stream("order-1", [NewEvent("Paid", {})], expected_version=0)
        assert result.stream_position == 1
        assert verify_chain(store.export_events()) == 2

    def test_a_refused_append_inside_a_transaction_writes_nothing_and_the_work_goes_on(
        self, store: EventStore
    ) -> None:
        store.use(COUNTS)
        taken = uuid.uuid4()
        store.append_to_stream(
            "a-1", [NewEvent("E", {}, event_id=taken)], expected_version=StreamState.NO_STREAM
        )

        def work(tx: Transaction) -> list[str]:
            refused = []
            try:
                tx.append_to_stream("a-1", [NewEvent("E", {})], expected_version=5)
            except WrongExpectedVersionError as error:
                refused.append(f"version {error.actual}")
            try:
                tx.append_to_stream(
                    "b-1", [NewEvent("E", {}, event_id=taken)], expected_version=StreamState.ANY
                )
            except DuplicateEventIdError:
                refused.append("duplicate")
            bump(tx, "after", 1)
            tx.append_to_stream("a-1", [NewEvent("F", {})], expected_version=0)
            return refused

        assert store.run_transaction(work) == ["version 0", "duplicate"]
        assert count_of(store, "after") == 1
        assert [e.event_type for e in store.read_stream("a-1")] == ["E", "F"]
        assert store.get_stream_version("b-1") is None

    def test_a_retried_append_inside_a_transaction_returns_the_original_result(
        self, store: EventStore
    ) -> None:
        event = NewEvent("E", {"n": 1}, event_id=uuid.uuid4())
        first = store.append_to_stream("r-1", [event], expected_version=StreamState.NO_STREAM)

        def work(tx: Transaction) -> object:
            return tx.append_to_stream("r-1", [event], expected_version=StreamState.NO_STREAM)

        assert store.run_transaction(work) == first
        assert store.get_stream_version("r-1") == 0

    def test_a_transaction_appends_to_several_streams_atomically(self, store: EventStore) -> None:
        from eventvault import StreamAppend

        def work(tx: Transaction) -> object:
            return tx.append_to_streams(
                [
                    StreamAppend("from-1", [NewEvent("Sent", {})], StreamState.NO_STREAM),
                    StreamAppend("to-1", [NewEvent("Received", {})], StreamState.NO_STREAM),
                ]
            )

        results = store.run_transaction(work)
        assert isinstance(results, list) and len(results) == 2
        positions = [e.global_position for e in store.read_all()]
        assert positions == [results[0].global_position, results[1].global_position]

    def test_a_transaction_that_swallows_a_failed_statement_commits_nothing(
        self, store: EventStore
    ) -> None:
        store.use(COUNTS)

        def work(tx: Transaction) -> None:
            bump(tx, "orders", 1)
            tx.append_to_stream("o-1", [NewEvent("E", {})], expected_version=StreamState.ANY)
            with contextlib.suppress(StorageError):
                tx.execute("INSERT INTO no_such_table VALUES (1)")
            with pytest.raises(TransactionUsageError, match="failed"):
                bump(tx, "orders", 1)

        with pytest.raises(TransactionUsageError, match="returned anyway"):
            store.run_transaction(work)
        assert count_of(store, "orders") == 0
        assert store.get_stream_version("o-1") is None

    def test_appending_through_the_store_inside_the_work_is_refused(
        self, store: EventStore
    ) -> None:
        store.use(COUNTS)

        def work(tx: Transaction) -> None:
            bump(tx, "x", 1)
            store.append_to_stream("x-1", [NewEvent("E", {})], expected_version=StreamState.ANY)

        with pytest.raises(TransactionUsageError, match=r"tx\.append_to_stream"):
            store.run_transaction(work)
        assert count_of(store, "x") == 0
        assert store.get_stream_version("x-1") is None
        with pytest.raises(TransactionUsageError):
            store.run_transaction(lambda tx: store.run_transaction(lambda inner: None))

    def test_a_closed_store_refuses_transactions(self, store: EventStore) -> None:
        store.close()
        with pytest.raises(StoreClosedError):
            store.run_transaction(lambda tx: None)
        with pytest.raises(StoreClosedError):
            store.use(COUNTS)

    # -- with ordinary appends and subscribers -----------------------------------------------

    def test_a_subscriber_is_woken_by_a_transactions_appends(self, store: EventStore) -> None:
        with store.subscribe_to_all() as subscription:
            assert subscription.next_batch(timeout=0.05) == []
            store.run_transaction(
                lambda tx: tx.append_to_stream(
                    "s-1", [NewEvent("E", {})], expected_version=StreamState.ANY
                )
            )
            batch = subscription.next_batch(timeout=5)
        assert [e.stream_name for e in batch] == ["s-1"]

    def test_transactions_and_ordinary_appends_from_threads_never_interleave_wrongly(
        self, store: EventStore
    ) -> None:
        store.use(COUNTS)
        errors: list[BaseException] = []

        def transactions(worker: int) -> None:
            try:
                for n in range(15):

                    def work(tx: Transaction, n: int = n) -> None:
                        version = tx.get_stream_version("shared-1")
                        expected = StreamState.NO_STREAM if version is None else version
                        bump(tx, "shared", 2)
                        tx.append_to_stream(
                            "shared-1",
                            [NewEvent("T", {"w": worker, "n": n}), NewEvent("T2", {"w": worker})],
                            expected_version=expected,
                        )

                    # Decided on a version read before the append: another writer may come
                    # first (on PostgreSQL, which runs them side by side); then run it again.
                    while True:
                        try:
                            store.run_transaction(work)
                            break
                        except WrongExpectedVersionError:
                            continue
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        def appends(worker: int) -> None:
            try:
                for n in range(15):
                    store.append_to_stream(
                        "shared-1",
                        [NewEvent("A", {"w": worker, "n": n})],
                        expected_version=StreamState.ANY,
                    )
                    store.append_to_stream(
                        f"own-{worker}", [NewEvent("B", {"n": n})], expected_version=StreamState.ANY
                    )
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=transactions, args=(w,)) for w in range(3)]
        threads += [threading.Thread(target=appends, args=(w,)) for w in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [], errors
        shared = list(store.read_stream("shared-1"))
        assert [e.stream_position for e in shared] == list(range(3 * 15 * 2 + 3 * 15))
        # A transaction's two events are adjacent in its stream: nothing came between them.
        for first, second in itertools.pairwise(shared):
            if first.event_type == "T":
                assert second.event_type == "T2"
        assert count_of(store, "shared") == sum(1 for e in shared if e.event_type in ("T", "T2"))
        log = list(store.read_all())
        assert [e.global_position for e in log] == sorted(e.global_position for e in log)
        assert verify_chain(store.export_events()) == len(log)

    # -- crashes -----------------------------------------------------------------------------

    def test_a_transaction_killed_half_way_leaves_nothing(self, engine: EngineSpec) -> None:
        if not engine.durable or not engine.multiprocess:
            pytest.skip(f"{engine.name} does not outlive its process")
        with engine.open() as store:
            store.use(COUNTS)
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "eventvault.testing._workers",
                "transact-and-hang",
                engine.url,
                "hang",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            line = child.stdout.readline()
        finally:
            child.send_signal(signal.SIGKILL)
            _, err = child.communicate(timeout=30)
        assert line.strip() == "inside", err
        with engine.open() as store:
            store.use(COUNTS)
            assert count_of(store, "hang") == 0
            assert store.get_stream_version("hang-1") is None
            result = store.append_to_stream(
                "hang-1", [NewEvent("E", {})], expected_version=StreamState.NO_STREAM
            )
            assert result.stream_position == 0

    def test_transactions_killed_at_random_points_are_each_all_or_nothing(
        self, engine: EngineSpec
    ) -> None:
        if not engine.durable or not engine.multiprocess:
            pytest.skip(f"{engine.name} does not outlive its process")
        with engine.open() as store:
            store.use(COUNTS)
        acknowledged = 0
        for round_ in range(4):
            child = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "eventvault.testing._workers",
                    "transact-forever",
                    engine.url,
                    "crash",
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            time.sleep(0.3 + 0.15 * round_)
            os.kill(child.pid, signal.SIGKILL)
            out, _ = child.communicate(timeout=30)
            acknowledged += sum(1 for line in out.splitlines() if line.strip())
        with engine.open() as store:
            store.use(COUNTS)
            counted = count_of(store, "crash")
            stored = sum(1 for _ in store.read_all(stream_prefix="crash-"))
            assert counted == stored, "every transaction's rows and events, or neither"
            assert stored >= 3 * acknowledged, "every acknowledged transaction is stored"
            assert verify_chain(store.export_events()) == store.stats().event_count
