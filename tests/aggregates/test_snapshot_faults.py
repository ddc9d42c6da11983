"""A snapshot store that fails never fails a load or a committed save: snapshots are derived."""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime

import pytest

from eventvault import EventStore
from eventvault.aggregates import MemorySnapshotStore, Repository, Snapshot, snapshot_store_for
from eventvault.errors import StorageError
from tests.aggregates.domain import Counter, new_counter, registry

LOGGER = "eventvault.aggregates"


class FullDiskSnapshots(MemorySnapshotStore):
    """Snapshots whose writes fail with the operating system's own error."""

    def save(self, snapshot: Snapshot) -> None:
        raise OSError(28, "No space left on device")


class UnreadableSnapshots(MemorySnapshotStore):
    """Snapshots whose reads fail with an error of the store's own making."""

    def latest(
        self,
        stream_name: str,
        *,
        schema_version: int,
        max_version: int | None = None,
        as_of: datetime | None = None,
    ) -> Snapshot | None:
        raise RuntimeError("snapshot service unreachable")


def test_a_save_whose_snapshot_fails_with_a_foreign_error_succeeds_and_logs_it(
    store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    counters = Repository(
        Counter, store, registry, snapshot_store=FullDiskSnapshots(), snapshot_every=2
    )
    counter = new_counter("1", increments=2)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        results = counters.save(counter)
    assert results[0].stream_position == 2
    assert counter.version == 2
    assert counter.pending_events == []
    assert store.get_stream_version("counter-1") == 2
    assert counters.snapshot_failures == 1
    [record] = [r for r in caplog.records if r.name.startswith(LOGGER)]
    assert record.levelno == logging.WARNING
    assert "'counter-1' at version 2" in record.getMessage()
    assert "No space left on device" in record.getMessage()
    assert record.exc_info is not None


def test_a_load_whose_snapshot_read_fails_replays_the_whole_stream_and_logs_it(
    store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    Repository(Counter, store, registry).save(new_counter("1", increments=4))
    counters = Repository(Counter, store, registry, snapshot_store=UnreadableSnapshots())
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        loaded = counters.get("1")
        past = counters.get("1", version=2)
    assert (loaded.version, loaded.state.value) == (4, 4)
    assert (past.version, past.state.value) == (2, 2)
    assert counters.snapshot_failures == 2
    messages = [r.getMessage() for r in caplog.records if r.name.startswith(LOGGER)]
    assert len(messages) == 2
    assert all("'counter-1'" in m and "snapshot service unreachable" in m for m in messages)


def test_take_snapshot_reports_a_foreign_snapshot_store_error_as_a_storage_error(
    store: EventStore,
) -> None:
    counters = Repository(Counter, store, registry, snapshot_store=FullDiskSnapshots())
    counters.save(new_counter("1"))
    with pytest.raises(StorageError, match=r"'counter-1' at version 0: OSError") as raised:
        counters.take_snapshot(counters.get("1"))
    assert isinstance(raised.value.__cause__, OSError)


def _drop_snapshots_table(path: str) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute("DROP TABLE snapshots")
        conn.commit()
    finally:
        conn.close()


def test_a_dropped_sqlite_snapshots_table_falls_back_to_replay_and_comes_back_on_save(
    sqlite_store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    path = sqlite_store.url.removeprefix("sqlite:///")
    with Repository(Counter, sqlite_store, registry, snapshot_every=2) as counters:
        counter = new_counter("1", increments=1)
        counters.save(counter)
        assert counters.snapshot_store is not None
        assert counters.snapshot_store.latest("counter-1", schema_version=1) is not None
        _drop_snapshots_table(path)

        with caplog.at_level(logging.WARNING, logger=LOGGER):
            loaded = counters.get("1")
        assert (loaded.version, loaded.state.value) == (1, 1)
        assert counters.snapshot_failures == 1
        assert "no such table: snapshots" in caplog.text

        loaded.increment()
        loaded.increment()
        counters.save(loaded)
        assert counters.snapshot_failures == 1
        taken = counters.snapshot_store.latest("counter-1", schema_version=1)
        assert taken is not None and taken.version == 3
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            assert counters.get("1").state.value == 3
        assert caplog.text == ""


def test_snapshot_store_for_recreates_a_dropped_table_on_its_next_write(
    sqlite_store: EventStore,
) -> None:
    path = sqlite_store.url.removeprefix("sqlite:///")
    snapshots = snapshot_store_for(sqlite_store)
    try:
        _drop_snapshots_table(path)
        with pytest.raises(StorageError, match="no such table"):
            snapshots.latest("counter-1", schema_version=1)
        assert snapshots.delete("counter-1") == 0
        assert snapshots.latest("counter-1", schema_version=1) is None
    finally:
        snapshots.close()
