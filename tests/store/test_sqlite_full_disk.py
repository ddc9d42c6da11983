"""SQLite when there is no room: appends that hit a full database or a full disk fail with a
storage error that says so, store nothing of themselves, lose nothing acknowledged, leave a sound
file, and the store takes appends again once there is room.

A full database is SQLite's `PRAGMA max_page_count` (SQLITE_FULL without a full disk); a full disk
is a small tmpfs filled up (ENOSPC), where mounting one is allowed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

import eventvault
from eventvault import EventStore, NewEvent, StreamState
from eventvault.errors import StorageError
from eventvault.serialization import verify_chain
from eventvault.store.sqlite import SQLiteEventStore

from .filesystems import fill, tmpfs

REFUSALS = 10
"""Refused appends each thread waits for before it stops."""


@dataclass(frozen=True)
class Acknowledged:
    """An append that returned: where its events are."""

    stream: str
    n: int
    first: int
    size: int
    global_position: int


def append(store: EventStore, stream: str, n: int) -> Acknowledged:
    """Append 1 to 3 events (by `n`) of about 500 bytes each; say where they went."""
    size = n % 3 + 1
    result = store.append_to_stream(
        stream,
        [NewEvent("Filled", {"n": n, "i": i, "pad": "x" * 500}) for i in range(size)],
        expected_version=StreamState.ANY,
    )
    return Acknowledged(stream, n, result.stream_position - size + 1, size, result.global_position)


def append_until_refused(store: EventStore) -> tuple[list[Acknowledged], list[StorageError]]:
    """Append from four threads at once until each was refused `REFUSALS` times.

    Returns:
        The appends acknowledged, and the errors of those refused.
    """
    acknowledged: list[Acknowledged] = []
    refused: list[StorageError] = []
    lock = threading.Lock()

    def work(thread: int) -> None:
        refusals = 0
        for n in range(3000):
            try:
                ack = append(store, f"fill-{thread}-{n % 4}", n)
            except StorageError as exc:
                with lock:
                    refused.append(exc)
                refusals += 1
                if refusals == REFUSALS:
                    return
            else:
                with lock:
                    acknowledged.append(ack)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return acknowledged, refused


def assert_holds_exactly(store: SQLiteEventStore, acknowledged: list[Acknowledged]) -> None:
    """Every acknowledged append is stored whole where it was acknowledged, nothing else is
    (a refused append stored nothing), and the file and the hash chain are sound."""
    for ack in acknowledged:
        got = list(store.read_stream(ack.stream, from_position=ack.first, limit=ack.size))
        assert [(e.data["n"], e.data["i"]) for e in got] == [(ack.n, i) for i in range(ack.size)]
        assert got[-1].global_position == ack.global_position
    assert store.stats().event_count == sum(ack.size for ack in acknowledged)
    assert verify_chain(store.export_events()) == store.stats().event_count
    assert store.integrity_check() == ["ok"]


def assert_names_the_full_store(refused: list[StorageError], path: Path) -> None:
    assert len(refused) >= 4 * REFUSALS
    for error in refused:
        assert "full" in str(error), error
        assert str(path) in str(error), error


def test_appends_that_fill_the_database_fail_saying_so_and_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with eventvault.connect(str(path)) as store:
        assert isinstance(store, SQLiteEventStore)
        acknowledged = [append(store, "first-1", 0)]
        pages = store._writer.execute("PRAGMA page_count").fetchone()[0]
        store._writer.execute(f"PRAGMA max_page_count = {pages + 40}")

        more, refused = append_until_refused(store)

        assert more, "appends were acknowledged before the database was full"
        assert_names_the_full_store(refused, path)
        acknowledged += more
        assert_holds_exactly(store, acknowledged)
        store._writer.execute("PRAGMA max_page_count = 2147483646")
        acknowledged.append(append(store, "first-1", 1))
        assert_holds_exactly(store, acknowledged)
    with eventvault.connect(str(path)) as store:
        assert isinstance(store, SQLiteEventStore)
        assert_holds_exactly(store, acknowledged)


def test_appends_on_a_full_disk_fail_saying_so_and_go_on_once_there_is_room() -> None:
    with tmpfs("4m") as disk:
        path = disk / "events.db"
        with eventvault.connect(str(path)) as store:
            assert isinstance(store, SQLiteEventStore)
            acknowledged = [append(store, "first-1", 0)]
            filler = fill(disk, leave=300_000)

            more, refused = append_until_refused(store)

            assert more, "appends were acknowledged before the disk was full"
            assert_names_the_full_store(refused, path)
            acknowledged += more
            assert_holds_exactly(store, acknowledged)
        # Closed and opened again while the disk is still full: nothing lost either.
        with eventvault.connect(str(path)) as store:
            assert isinstance(store, SQLiteEventStore)
            assert_holds_exactly(store, acknowledged)
            filler.unlink()
            acknowledged.append(append(store, "first-1", 1))
            assert_holds_exactly(store, acknowledged)
        with eventvault.connect(str(path)) as store:
            assert isinstance(store, SQLiteEventStore)
            assert_holds_exactly(store, acknowledged)


@pytest.mark.xfail(
    strict=True,
    reason="opening a store on a disk without room for its -shm file fails with 'disk I/O "
    "error' (SQLITE_IOERR_SHMSIZE), which does not say that the disk is full",
)
def test_a_store_opened_on_a_full_disk_says_the_disk_is_full() -> None:
    with tmpfs("1m") as disk:
        path = disk / "events.db"
        with eventvault.connect(str(path)) as store:
            append(store, "first-1", 0)
        filler = fill(disk, leave=0)
        try:
            with pytest.raises(StorageError, match="full"):
                eventvault.connect(str(path))
        finally:
            filler.unlink()
