"""The global order under concurrent writers: no reader ever passes a position that a still
open transaction may fill in, and aborted transactions leave gaps that never fill."""

from __future__ import annotations

import logging
import multiprocessing
import random
import threading
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from eventvault import NewEvent, StreamAppend, StreamState
from eventvault.serialization import verify_chain
from eventvault.store.postgres import PostgresEventStore
from eventvault.store.seam import Transaction
from eventvault.store.subscription import Subscription
from eventvault.testing.contract.seam import COUNTS, bump, count_of
from tests.postgres._writers import HeldWriter, delayed_appends


@pytest.fixture
def quick(store_url: str) -> Iterator[PostgresEventStore]:
    """A store whose readers wait only briefly for open transactions, and warn early."""
    opened = PostgresEventStore(store_url, horizon_wait=0.05, stall_warning_after=0.2)
    try:
        yield opened
    finally:
        opened.close()


def _positions(store: PostgresEventStore) -> list[int]:
    return [event.global_position for event in store.read_all()]


def _append_one(store: PostgresEventStore, stream: str) -> int:
    result = store.append_to_stream(stream, [NewEvent("E", {})], expected_version=StreamState.ANY)
    return result.global_position


def test_a_reader_stops_below_a_writer_holding_reserved_positions(
    quick: PostgresEventStore, server_url: str
) -> None:
    with HeldWriter(server_url, quick.schema, "held-1") as held:
        later = _append_one(quick, "other-1")
        assert later > held.positions[0]
        assert _positions(quick) == []
        assert quick.head_position() == 0
        held.commit()
    assert _positions(quick) == [*held.positions, later]


def test_a_subscriber_is_not_handed_events_committed_after_an_open_writer_until_it_ends(
    quick: PostgresEventStore, server_url: str
) -> None:
    with HeldWriter(server_url, quick.schema, "held-1") as held, quick.subscribe_to_all() as sub:
        later = _append_one(quick, "other-1")
        assert sub.next_batch(timeout=0.5) == []
        assert sub.position == 0
        held.commit()
        delivered = [event.global_position for event in sub.next_batch(timeout=5)]
        while len(delivered) < 2:
            delivered += [event.global_position for event in sub.next_batch(timeout=5)]
    assert delivered == [held.positions[0], later]


def test_an_aborted_writer_leaves_a_gap_that_never_fills(
    quick: PostgresEventStore, server_url: str
) -> None:
    with HeldWriter(server_url, quick.schema, "held-1") as held:
        later = _append_one(quick, "other-1")
        held.rollback()
    assert _positions(quick) == [later]
    after = _append_one(quick, "other-1")
    assert _positions(quick) == [later, after]
    assert held.positions[0] not in _positions(quick)


def test_backwards_reads_start_below_an_open_writer(
    quick: PostgresEventStore, server_url: str
) -> None:
    first = _append_one(quick, "a-1")
    with HeldWriter(server_url, quick.schema, "held-1") as held:
        _append_one(quick, "a-1")
        assert [e.global_position for e in quick.read_all(backwards=True)] == [first]
        held.rollback()


def test_horizon_status_names_the_open_transaction_readers_wait_for(
    quick: PostgresEventStore, server_url: str
) -> None:
    with HeldWriter(server_url, quick.schema, "held-1") as held:
        _append_one(quick, "other-1")
        status = quick.horizon_status()
        assert status.blocked
        assert status.visible_position < status.head_position
        blocker = next(b for b in status.blockers if b.pid == held.pid)
        assert blocker.state == "idle in transaction"
        assert blocker.transaction_age is not None
        held.rollback()
    assert not quick.horizon_status().blocked


def test_horizon_status_is_clear_when_nothing_waits(quick: PostgresEventStore) -> None:
    _append_one(quick, "a-1")
    status = quick.horizon_status()
    assert (status.blocked, status.blockers, status.visible_position) == (False, (), 1)


def test_an_unrelated_open_transaction_stalls_readers_and_is_logged(
    quick: PostgresEventStore, server_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="eventvault.postgres")
    with psycopg.connect(server_url, autocommit=True) as other:
        pid = other.info.backend_pid
        other.execute("BEGIN")
        other.execute("SELECT pg_current_xact_id()")  # any write would do the same
        position = _append_one(quick, "a-1")
        deadline = time.monotonic() + 5
        while not caplog.records and time.monotonic() < deadline:
            assert _positions(quick) == []
            time.sleep(0.05)
        other.execute("ROLLBACK")
    assert any(f"pid {pid} " in record.getMessage() for record in caplog.records)
    assert _positions(quick) == [position]


def test_a_short_open_transaction_only_delays_a_read(
    store: PostgresEventStore, server_url: str
) -> None:
    with psycopg.connect(server_url, autocommit=True) as other:
        other.execute("BEGIN")
        other.execute("SELECT pg_current_xact_id()")
        position = _append_one(store, "a-1")
        ender = threading.Timer(0.1, lambda: other.execute("ROLLBACK"))
        ender.start()
        assert _positions(store) == [position]
        ender.join()


class _Tail(threading.Thread):
    """A subscriber that records every event it is handed, and any step backwards."""

    def __init__(self, subscription: Subscription, expected: int) -> None:
        super().__init__(daemon=True)
        self.subscription = subscription
        self.expected = expected
        self.seen: list[int] = []
        self.backwards: list[tuple[int, int]] = []

    def run(self) -> None:
        checkpoint = 0
        for event in self.subscription:
            if event.global_position <= checkpoint:
                self.backwards.append((checkpoint, event.global_position))
            checkpoint = self.subscription.position
            self.seen.append(event.global_position)
            if len(self.seen) >= self.expected:
                return


def _spawned_writer(server_url: str, schema: str, stream: str, seed: int, count: int) -> list[int]:
    rng = random.Random(seed)
    delays = [rng.uniform(0, 0.03) for _ in range(count)]
    aborts = [rng.random() < 0.15 for _ in range(count)]
    return delayed_appends(server_url, schema, stream, delays, aborts)


def test_tailing_subscribers_get_every_committed_event_once_in_order_under_delayed_commits(
    store: PostgresEventStore, store_url: str, server_url: str
) -> None:
    rng = random.Random(20260127)
    thread_writers, per_thread, store_writers, per_store_writer = 6, 12, 4, 15
    process_writers, per_process = 2, 12
    committed: list[int] = []
    lock = threading.Lock()

    def delayed(index: int) -> None:
        delays = [rng.uniform(0, 0.03) for _ in range(per_thread)]
        aborts = [rng.random() < 0.15 for _ in range(per_thread)]
        got = delayed_appends(server_url, store.schema, f"slow-{index}", delays, aborts)
        with lock:
            committed.extend(got)

    writer_store = PostgresEventStore(store_url)

    def grouped(index: int) -> None:
        for n in range(per_store_writer):
            position = _append_one(writer_store, f"fast-{(index + n) % 5}")
            with lock:
                committed.append(position)
            time.sleep(rng.uniform(0, 0.01))

    # How many events will commit is only known at the end: subscribers read until they have
    # as many as were committed, which the test tells them once the writers are done.
    tails = [_Tail(store.subscribe_to_all(), 10**9) for _ in range(3)]
    for tail in tails:
        tail.start()
    context = multiprocessing.get_context("spawn")
    with context.Pool(process_writers) as pool:
        spawned = [
            pool.apply_async(
                _spawned_writer, (server_url, store.schema, f"proc-{i}", 1000 + i, per_process)
            )
            for i in range(process_writers)
        ]
        threads = [threading.Thread(target=delayed, args=(i,)) for i in range(thread_writers)]
        threads += [threading.Thread(target=grouped, args=(i,)) for i in range(store_writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for result in spawned:
            committed.extend(result.get(timeout=120))
    writer_store.close()

    expected = sorted(committed)
    assert len(set(expected)) == len(expected)
    deadline = time.monotonic() + 30
    while any(len(t.seen) < len(expected) for t in tails) and time.monotonic() < deadline:
        time.sleep(0.05)
    for tail in tails:
        tail.subscription.close()
        tail.join(timeout=5)
        assert tail.backwards == []
        assert tail.seen == expected
    assert _positions(store) == expected


def test_concurrent_creators_of_a_new_stream_get_one_winner_with_no_stream(
    store_url: str,
) -> None:
    stores = [PostgresEventStore(store_url) for _ in range(6)]
    barrier = threading.Barrier(len(stores))
    outcomes: list[str] = []

    def create(store: PostgresEventStore) -> None:
        barrier.wait()
        try:
            store.append_to_stream(
                "new-1", [NewEvent("Created", {})], expected_version=StreamState.NO_STREAM
            )
            outcomes.append("ok")
        except Exception as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=create, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert sorted(outcomes) == ["WrongExpectedVersionError"] * 5 + ["ok"]
        assert [e.stream_position for e in stores[0].read_stream("new-1")] == [0]
    finally:
        for s in stores:
            s.close()


def test_concurrent_creators_of_a_new_stream_with_any_all_succeed_in_turn(
    store_url: str,
) -> None:
    stores = [PostgresEventStore(store_url) for _ in range(6)]
    barrier = threading.Barrier(len(stores))
    positions: list[int] = []

    def create(store: PostgresEventStore) -> None:
        barrier.wait()
        result = store.append_to_stream(
            "new-1", [NewEvent("Created", {})], expected_version=StreamState.ANY
        )
        positions.append(result.stream_position)

    threads = [threading.Thread(target=create, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert sorted(positions) == list(range(6))
        events = list(stores[0].read_stream("new-1"))
        assert [e.stream_position for e in events] == list(range(6))
    finally:
        for s in stores:
            s.close()


def _deadlocks(admin: psycopg.Connection[tuple[object, ...]]) -> int:
    row = admin.execute(
        "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def test_writers_in_two_processes_keep_a_streams_events_in_stream_order_in_the_log(
    store_url: str, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    # Two store objects stand for two processes: each has its own group commit and its own
    # remembered heads, so their appends to one stream race on the server. Half the threads take
    # the careful path (each append also creates a new stream, whose head nobody remembers),
    # half the fast path once their store has seen the stream.
    stores = [PostgresEventStore(store_url) for _ in range(2)]
    deadlocks_before = _deadlocks(admin)
    start = threading.Barrier(8)

    def write(store: PostgresEventStore, careful: bool) -> None:
        start.wait()
        for n in range(60):
            if careful:
                store.append_to_streams(
                    [
                        StreamAppend("hot-1", [NewEvent("E", {"n": n})], StreamState.ANY),
                        StreamAppend(
                            f"side-{uuid.uuid4().hex}", [NewEvent("S", {})], StreamState.ANY
                        ),
                    ]
                )
            else:
                store.append_to_stream(
                    "hot-1", [NewEvent("E", {"n": n})], expected_version=StreamState.ANY
                )

    threads = [
        threading.Thread(target=write, args=(store, careful))
        for store in stores
        for careful in (True, False, True, False)
    ]
    started = time.monotonic()
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        positions = [e.stream_position for e in stores[0].read_all(stream_prefix="hot-")]
        assert positions == list(range(8 * 60))
        # The whole log is its own valid export: every stream in order, every hash chained.
        assert verify_chain(stores[0].export_events()) == 8 * 60 + 4 * 60
    finally:
        for store in stores:
            store.close()
    # Fast and careful writers of one stream take their locks in one order: none waits for
    # the deadlock detector (each such wait costs deadlock_timeout, a second by default).
    assert _deadlocks(admin) == deadlocks_before
    assert elapsed < 30


def test_a_transaction_that_wrote_rows_first_is_held_behind_an_older_open_reservation(
    quick: PostgresEventStore, server_url: str
) -> None:
    # The transaction gets its id when it writes its row, before the held writer reserves;
    # its events, reserved after the held writer's, must wait for it like any later event.
    quick.use(COUNTS)
    wrote = threading.Event()
    go_on = threading.Event()
    appended: list[int] = []

    def work(tx: Transaction) -> None:
        bump(tx, "early", 1)
        wrote.set()
        assert go_on.wait(10)
        result = tx.append_to_stream(
            "late-1", [NewEvent("E", {})], expected_version=StreamState.ANY
        )
        appended.append(result.global_position)

    transaction = threading.Thread(target=lambda: quick.run_transaction(work))
    transaction.start()
    assert wrote.wait(10)
    with HeldWriter(server_url, quick.schema, "held-1") as held, quick.subscribe_to_all() as sub:
        go_on.set()
        transaction.join(10)
        assert appended and appended[0] > held.positions[0]
        assert count_of(quick, "early") == 1  # committed...
        assert _positions(quick) == []  # ...but not delivered while the reservation is open
        assert quick.head_position() == 0
        assert sub.next_batch(timeout=0.3) == []
        held.commit()
        delivered = [event.global_position for event in sub.next_batch(timeout=5)]
        while len(delivered) < 2:
            delivered += [event.global_position for event in sub.next_batch(timeout=5)]
    assert delivered == [held.positions[0], appended[0]]
    assert _positions(quick) == delivered


def test_a_transaction_appending_twice_keeps_the_order_of_reservations_between(
    quick: PostgresEventStore, server_url: str
) -> None:
    # Its second reservation comes after another writer's: its events there must wait for it.
    first_done = threading.Event()
    go_on = threading.Event()
    positions: list[int] = []

    def work(tx: Transaction) -> None:
        one = tx.append_to_stream("twice-1", [NewEvent("A", {})], expected_version=StreamState.ANY)
        positions.append(one.global_position)
        first_done.set()
        assert go_on.wait(10)
        two = tx.append_to_stream("twice-2", [NewEvent("B", {})], expected_version=StreamState.ANY)
        positions.append(two.global_position)

    transaction = threading.Thread(target=lambda: quick.run_transaction(work))
    transaction.start()
    assert first_done.wait(10)
    with HeldWriter(server_url, quick.schema, "held-1") as held:
        go_on.set()
        transaction.join(10)
        assert positions[0] < held.positions[0] < positions[1]
        assert _positions(quick) == [positions[0]]
        held.commit()
    assert _positions(quick) == [positions[0], held.positions[0], positions[1]]
    assert verify_chain(quick.export_events()) == 3
