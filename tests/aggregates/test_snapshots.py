"""Snapshots: the stores, the policy, their use on load, and equality with a full replay."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

import eventvault
from eventvault import EventStore
from eventvault.aggregates import (
    AggregateQueryError,
    MemorySnapshotStore,
    Repository,
    Snapshot,
    SnapshotStore,
    StoreSnapshotStore,
    snapshot_store_for,
)
from eventvault.aggregates.snapshots import SNAPSHOTS
from eventvault.errors import StorageError, StoreClosedError
from tests.aggregates.domain import Counter, CounterState, new_counter, registry

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _snapshot(version: int, *, stream: str = "counter-1", schema: int = 1, at: int = 0) -> Snapshot:
    return Snapshot(
        stream_name=stream,
        version=version,
        schema_version=schema,
        state=msgspec.msgpack.encode(CounterState(value=version)),
        recorded_at=T0 + timedelta(seconds=at if at else version),
        taken_at=T0 + timedelta(days=1),
    )


@pytest.fixture(params=["dict", "beside-the-events"])
def snapshots(request: pytest.FixtureRequest, store: EventStore) -> Iterator[SnapshotStore]:
    """Each snapshot store: a dict, and the event store's own table on every engine."""
    if request.param == "dict":
        yield MemorySnapshotStore()
        return
    opened = StoreSnapshotStore(store)
    yield opened
    opened.close()


# -- the stores ----------------------------------------------------------------------------


def test_latest_gives_the_highest_version(snapshots: SnapshotStore) -> None:
    for version in (5, 2, 9):
        snapshots.save(_snapshot(version))
    found = snapshots.latest("counter-1", schema_version=1)
    assert found == _snapshot(9)


def test_latest_of_a_stream_without_snapshots_is_none(snapshots: SnapshotStore) -> None:
    snapshots.save(_snapshot(1, stream="counter-2"))
    assert snapshots.latest("counter-1", schema_version=1) is None


def test_latest_respects_max_version(snapshots: SnapshotStore) -> None:
    for version in (2, 5, 9):
        snapshots.save(_snapshot(version))
    found = snapshots.latest("counter-1", schema_version=1, max_version=8)
    assert found is not None and found.version == 5
    assert snapshots.latest("counter-1", schema_version=1, max_version=1) is None


def test_latest_ignores_other_schema_versions(snapshots: SnapshotStore) -> None:
    snapshots.save(_snapshot(3, schema=1))
    snapshots.save(_snapshot(7, schema=2))
    found = snapshots.latest("counter-1", schema_version=1)
    assert found is not None and found.version == 3
    assert snapshots.latest("counter-1", schema_version=3) is None


def test_latest_respects_as_of(snapshots: SnapshotStore) -> None:
    for version in (2, 5, 9):
        snapshots.save(_snapshot(version))
    found = snapshots.latest("counter-1", schema_version=1, as_of=T0 + timedelta(seconds=6))
    assert found is not None and found.version == 5
    assert snapshots.latest("counter-1", schema_version=1, as_of=T0) is None


def test_saving_at_the_same_version_replaces(snapshots: SnapshotStore) -> None:
    snapshots.save(_snapshot(3, schema=1))
    snapshots.save(_snapshot(3, schema=2))
    assert snapshots.latest("counter-1", schema_version=1) is None
    assert snapshots.latest("counter-1", schema_version=2) is not None


def test_delete_removes_every_snapshot_of_one_stream(snapshots: SnapshotStore) -> None:
    snapshots.save(_snapshot(1))
    snapshots.save(_snapshot(2))
    snapshots.save(_snapshot(1, stream="counter-2"))
    assert snapshots.delete("counter-1") == 2
    assert snapshots.latest("counter-1", schema_version=1) is None
    assert snapshots.latest("counter-2", schema_version=1) is not None


def test_sqlite_snapshots_live_in_their_own_table_of_the_event_store_file(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "s.db")
    with eventvault.connect(path) as store:
        counters = Repository(Counter, store, registry, snapshot_every=1)
        counters.save(new_counter("1"))
        counters.close()
    with sqlite3.connect(path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        count = conn.execute("SELECT count(*) FROM snapshots").fetchone()[0]
        recorded = conn.execute(
            "SELECT version FROM component_migrations WHERE component = 'snapshots'"
        ).fetchall()
    conn.close()
    assert {"events", "snapshots"} <= tables
    assert count == 1
    assert recorded == [(1,)]


def test_snapshots_survive_reopening_a_durable_store(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    with eventvault.connect(path) as store:
        StoreSnapshotStore(store).save(_snapshot(4))
    with eventvault.connect(path) as store:
        assert StoreSnapshotStore(store).latest("counter-1", schema_version=1) == _snapshot(4)


def test_snapshots_of_a_private_sqlite_memory_store_live_with_it() -> None:
    with eventvault.connect("sqlite:///:memory:") as store:
        first = snapshot_store_for(store)
        first.save(_snapshot(2))
        assert snapshot_store_for(store).latest("counter-1", schema_version=1) == _snapshot(2)


def test_snapshot_writes_go_through_the_stores_writer_and_wait_for_no_second_connection(
    tmp_path: Path,
) -> None:
    # A second write connection would wait for the writer's lock while a commit is held up;
    # the writer itself serializes snapshot saves with appends instead.
    path = str(tmp_path / "s.db")
    with eventvault.connect(path) as store:
        snapshots = StoreSnapshotStore(store)
        assert set(store.component_versions()) == {"eventvault", "snapshots"}
        snapshots.save(_snapshot(1))
        with sqlite3.connect(path) as other:
            assert other.execute("SELECT count(*) FROM snapshots").fetchone()[0] == 1
        other.close()


def test_a_closed_event_store_makes_its_snapshot_store_raise(tmp_path: Path) -> None:
    store = eventvault.connect(str(tmp_path / "s.db"))
    snapshots = StoreSnapshotStore(store)
    store.close()
    with pytest.raises(StoreClosedError):
        snapshots.latest("counter-1", schema_version=1)
    with pytest.raises(StoreClosedError):
        snapshots.save(_snapshot(1))


# -- choosing a store ----------------------------------------------------------------------


def test_snapshot_store_for_keeps_snapshots_beside_the_events_on_every_engine(
    store: EventStore,
) -> None:
    chosen = snapshot_store_for(store)
    assert isinstance(chosen, StoreSnapshotStore)
    assert store.component_versions()["snapshots"] == SNAPSHOTS.version
    chosen.close()


# -- the policy and loads ------------------------------------------------------------------


def _versions(snapshots: MemorySnapshotStore, stream: str) -> list[int]:
    found = []
    version = None
    while (s := snapshots.latest(stream, schema_version=1, max_version=version)) is not None:
        found.append(s.version)
        version = s.version - 1
    return sorted(found)


def test_a_snapshot_is_taken_each_time_a_save_crosses_a_multiple_of_n(store: EventStore) -> None:
    snapshots = MemorySnapshotStore()
    counters = Repository(Counter, store, registry, snapshot_store=snapshots, snapshot_every=3)
    counter = new_counter("1", increments=1)  # versions 0..1: 2 events
    counters.save(counter)
    for _ in range(5):  # versions 2..6, one save each
        counter.increment()
        counters.save(counter)
    counter.increment()
    counter.increment()
    counter.increment()  # versions 7..9 in one save: crosses 9 (count 9) and reaches 10 events
    counters.save(counter)
    assert _versions(snapshots, "counter-1") == [2, 5, 9]


def test_without_a_policy_no_snapshot_is_taken(store: EventStore) -> None:
    snapshots = MemorySnapshotStore()
    counters = Repository(Counter, store, registry, snapshot_store=snapshots)
    counters.save(new_counter("1", increments=10))
    assert snapshots.latest("counter-1", schema_version=1) is None


def test_get_starts_from_the_snapshot(store: EventStore) -> None:
    snapshots = MemorySnapshotStore()
    counters = Repository(Counter, store, registry, snapshot_store=snapshots)
    counters.save(new_counter("1", increments=4))
    taken = counters.take_snapshot(counters.get("1", version=2))
    # A state no replay could give proves the snapshot was used.
    snapshots.save(
        msgspec.structs.replace(taken, state=msgspec.msgpack.encode(CounterState(value=1000)))
    )
    assert counters.get("1").state.value == 1002


def test_a_snapshot_of_another_snapshot_version_is_ignored(store: EventStore) -> None:
    snapshots = MemorySnapshotStore()
    counters = Repository(Counter, store, registry, snapshot_store=snapshots)
    counters.save(new_counter("1", increments=4))
    taken = counters.take_snapshot(counters.get("1", version=2))
    fake = CounterState(value=1000)
    snapshots.save(msgspec.structs.replace(taken, state=msgspec.msgpack.encode(fake)))

    class CounterV2(Counter):
        snapshot_version = 2

    assert (
        Repository(CounterV2, store, registry, snapshot_store=snapshots).get("1").state.value == 4
    )


def test_get_at_a_version_uses_the_newest_snapshot_at_or_below_it(store: EventStore) -> None:
    snapshots = MemorySnapshotStore()
    counters = Repository(Counter, store, registry, snapshot_store=snapshots)
    counters.save(new_counter("1", increments=8))
    for version, marker in ((2, 1000), (5, 2000)):
        taken = counters.take_snapshot(counters.get("1", version=version))
        state = msgspec.msgpack.encode(CounterState(value=marker))
        snapshots.save(msgspec.structs.replace(taken, state=state))
    assert counters.get("1", version=4).state.value == 1002
    assert counters.get("1", version=5).state.value == 2000
    assert counters.get("1", version=7).state.value == 2002
    assert counters.get("1", version=1).state.value == 1


def test_get_as_of_uses_a_snapshot_recorded_by_then(store: EventStore) -> None:
    snapshots = MemorySnapshotStore()
    counters = Repository(Counter, store, registry, snapshot_store=snapshots)
    counter = new_counter("1")
    counters.save(counter)
    created_at = next(store.read_stream("counter-1")).recorded_at
    time.sleep(0.002)
    counter.increment()
    counters.save(counter)
    taken = counters.take_snapshot(counters.get("1"))
    snapshots.save(
        msgspec.structs.replace(taken, state=msgspec.msgpack.encode(CounterState(value=1000)))
    )
    assert counters.get("1", as_of=taken.recorded_at).state.value == 1000
    assert counters.get("1", as_of=created_at).state.value == 0


def test_a_snapshot_that_no_longer_decodes_is_skipped_with_a_warning(
    store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    snapshots = MemorySnapshotStore()
    counters = Repository(Counter, store, registry, snapshot_store=snapshots)
    counters.save(new_counter("1", increments=3))
    taken = counters.take_snapshot(counters.get("1"))
    snapshots.save(msgspec.structs.replace(taken, state=msgspec.msgpack.encode({"value": "x"})))
    with caplog.at_level(logging.WARNING, logger="eventvault.aggregates.repository"):
        assert counters.get("1").state.value == 3
    assert "does not decode" in caplog.text


def test_a_failing_snapshot_does_not_fail_the_save(
    store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    class BrokenSnapshots(MemorySnapshotStore):
        def save(self, snapshot: Snapshot) -> None:
            raise StorageError("disk full")

    counters = Repository(
        Counter, store, registry, snapshot_store=BrokenSnapshots(), snapshot_every=1
    )
    counter = new_counter("1")
    with caplog.at_level(logging.WARNING, logger="eventvault.aggregates.repository"):
        counters.save(counter)
    assert counter.version == 0
    assert "disk full" in caplog.text
    assert store.get_stream_version("counter-1") == 0


def test_take_snapshot_refuses_an_aggregate_with_pending_events(store: EventStore) -> None:
    counters = Repository(Counter, store, registry, snapshot_store=MemorySnapshotStore())
    with pytest.raises(AggregateQueryError, match="pending events"):
        counters.take_snapshot(new_counter("1"))


def test_take_snapshot_refuses_an_aggregate_never_saved(store: EventStore) -> None:
    counters = Repository(Counter, store, registry, snapshot_store=MemorySnapshotStore())
    with pytest.raises(AggregateQueryError, match="no stored events"):
        counters.take_snapshot(Counter("1"))


def test_take_snapshot_needs_a_snapshot_store(store: EventStore) -> None:
    counters = Repository(Counter, store, registry)
    counters.save(new_counter("1"))
    with pytest.raises(AggregateQueryError, match="no snapshot store"):
        counters.take_snapshot(counters.get("1"))


def test_a_repository_leaves_the_event_stores_snapshots_after_it_closes(
    sqlite_store: EventStore,
) -> None:
    with Repository(Counter, sqlite_store, registry, snapshot_every=1) as counters:
        counters.save(new_counter("1"))
    assert snapshot_store_for(sqlite_store).latest("counter-1", schema_version=1) is not None


def test_a_repository_leaves_a_given_snapshot_store_open(sqlite_store: EventStore) -> None:
    given = MemorySnapshotStore()
    with Repository(Counter, sqlite_store, registry, snapshot_store=given, snapshot_every=1) as r:
        r.save(new_counter("1"))
    assert given.latest("counter-1", schema_version=1) is not None


def test_snapshots_beside_a_durable_store_are_found_by_a_second_snapshot_store(
    store: EventStore,
) -> None:
    first = snapshot_store_for(store)
    first.save(_snapshot(3))
    first.save(_snapshot(5))
    second = snapshot_store_for(store)
    try:
        found = second.latest("counter-1", schema_version=1, max_version=4)
        assert found is not None
        assert found.version == 3
        assert msgspec.msgpack.decode(found.state, type=CounterState).value == 3
        assert second.delete("counter-1") == 2
        assert first.latest("counter-1", schema_version=1) is None
    finally:
        first.close()
        second.close()
