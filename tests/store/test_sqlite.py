"""SQLite-specific behaviour: files, settings, recognising foreign files, group commit."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import pytest

import eventvault
from eventvault import NewEvent, StreamMetadata, StreamState
from eventvault.aggregates.snapshots import StoreSnapshotStore
from eventvault.errors import (
    CorruptEventError,
    EventVaultError,
    InvalidURLError,
    NotAnEventVaultDatabaseError,
    SchemaVersionError,
    StoreClosedError,
)
from eventvault.serialization import verify_chain
from eventvault.store.sqlite import APPLICATION_ID, SCHEMA_VERSION, SQLiteEventStore


def _pragma(path: Path, name: str) -> object:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]


def test_a_new_file_is_created_in_wal_mode_and_marked_as_ours(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with eventvault.connect(str(path)):
        pass
    assert _pragma(path, "journal_mode") == "wal"
    assert _pragma(path, "application_id") == APPLICATION_ID
    assert _pragma(path, "user_version") == SCHEMA_VERSION


def test_writes_use_synchronous_full_by_default(tmp_path: Path) -> None:
    with eventvault.connect(str(tmp_path / "s.db")) as store:
        assert isinstance(store, SQLiteEventStore)
        assert store._writer.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_synchronous_normal_can_be_chosen_in_the_url(tmp_path: Path) -> None:
    with eventvault.connect(f"sqlite:///{tmp_path}/n.db?synchronous=normal") as store:
        assert isinstance(store, SQLiteEventStore)
        assert store._writer.execute("PRAGMA synchronous").fetchone()[0] == 1


def test_sqlite_url_with_absolute_path_opens_that_file(tmp_path: Path) -> None:
    path = tmp_path / "abs.db"
    with eventvault.connect(f"sqlite:///{path}") as store:
        store.append_to_stream("s-1", [NewEvent("A", {})], expected_version=StreamState.ANY)
    with eventvault.connect(str(path)) as store:
        assert store.get_stream_version("s-1") == 0


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///x.db?cache=huge",
        "sqlite://otherhost/x.db",
        "sqlite:///x.db?synchronous=off",
        "redis://x",
        "memory://x",
    ],
)
def test_bad_urls_are_refused_with_a_clear_error(url: str) -> None:
    with pytest.raises(InvalidURLError) as caught:
        eventvault.connect(url)
    assert url in str(caught.value)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database" * 100)
    with pytest.raises(NotAnEventVaultDatabaseError) as caught:
        eventvault.connect(str(path))
    assert str(path) in str(caught.value)
    assert path.read_bytes().startswith(b"these are my notes")


def test_a_database_of_another_application_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    with pytest.raises(NotAnEventVaultDatabaseError, match="customers"):
        eventvault.connect(str(path))
    assert _pragma(path, "journal_mode") == "delete"
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    assert tables == ["customers"]


def test_a_database_with_a_foreign_application_id_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "foreign.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA application_id = 1234")
    with pytest.raises(NotAnEventVaultDatabaseError, match="application_id"):
        eventvault.connect(str(path))


def test_a_newer_storage_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with eventvault.connect(str(path)):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaVersionError) as caught:
        eventvault.connect(str(path))
    assert caught.value.found == SCHEMA_VERSION + 1


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NotAnEventVaultDatabaseError, match="directory"):
        eventvault.connect(str(tmp_path))


def test_operations_on_a_closed_store_raise(tmp_path: Path) -> None:
    store = eventvault.connect(str(tmp_path / "c.db"))
    store.close()
    store.close()
    with pytest.raises(StoreClosedError):
        store.append_to_stream("s-1", [NewEvent("A", {})], expected_version=StreamState.ANY)
    with pytest.raises(StoreClosedError):
        list(store.read_all())


def test_concurrent_appends_share_transactions(tmp_path: Path) -> None:
    store = eventvault.connect(str(tmp_path / "g.db"))
    assert isinstance(store, SQLiteEventStore)
    batches: list[int] = []
    commit = store._commit_batch

    def counting(requests: list) -> list:  # type: ignore[type-arg]
        batches.append(len(requests))
        return commit(requests)

    store._committer._commit = counting
    start = threading.Barrier(16)

    def work(worker: int) -> None:
        start.wait()
        for n in range(30):
            store.append_to_stream(
                f"g-{worker}", [NewEvent("E", {"n": n})], expected_version=StreamState.ANY
            )

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()
    assert sum(batches) == 16 * 30
    assert len(batches) < 16 * 30 / 2, "appends waiting together commit together"


def test_two_stores_on_one_file_see_each_others_events(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    with eventvault.connect(path) as first, eventvault.connect(path) as second:
        first.append_to_stream("s-1", [NewEvent("A", {})], expected_version=StreamState.NO_STREAM)
        second.append_to_stream("s-1", [NewEvent("B", {})], expected_version=0)
        assert [e.event_type for e in first.read_stream("s-1")] == ["A", "B"]
        with first.subscribe_to_all() as subscription:
            assert len(subscription.next_batch(timeout=1)) == 2


def test_integrity_check_reports_ok_for_a_sound_file(tmp_path: Path) -> None:
    with eventvault.connect(str(tmp_path / "i.db")) as store:
        assert isinstance(store, SQLiteEventStore)
        store.append_to_stream("s-1", [NewEvent("A", {})], expected_version=StreamState.ANY)
        assert store.integrity_check() == ["ok"]


FIXTURE_V1 = Path(__file__).parents[1] / "fixtures" / "stores" / "sqlite-schema-1.db"


def test_a_store_written_by_0_1_0_is_upgraded_in_place_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    shutil.copy(FIXTURE_V1, path)
    assert _pragma(path, "user_version") == 1
    with SQLiteEventStore(str(path)) as store:
        assert store.core_migrations_applied == list(range(2, SCHEMA_VERSION + 1))
        assert store.component_versions() == {"eventvault": SCHEMA_VERSION}
        assert [(e.stream_name, e.event_type) for e in store.read_all()][-1] == (
            "order-1",
            "OrderPlaced",
        )
        assert verify_chain(store.export_events()) == 7
        result = store.append_to_stream(
            "account-0", [NewEvent("MoneyDeposited", {"amount": 1})], expected_version=1
        )
        assert (result.stream_position, result.global_position) == (2, 8)
    assert _pragma(path, "user_version") == SCHEMA_VERSION
    with SQLiteEventStore(str(path)) as again:
        assert again.core_migrations_applied == []
        assert verify_chain(again.export_events()) == 8


def test_processes_opening_an_old_store_at_once_upgrade_it_once(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    shutil.copy(FIXTURE_V1, path)
    code = (
        "import sys; from eventvault.store.sqlite import SQLiteEventStore; "
        "s = SQLiteEventStore(sys.argv[1]); print(s.core_migrations_applied); s.close()"
    )
    children = [
        subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outputs = [child.communicate(timeout=60)[0].strip() for child in children]
    assert all(child.returncode == 0 for child in children)
    assert sorted(outputs) == ["[2, 3]", "[]", "[]", "[]"]
    with sqlite3.connect(path) as conn:
        recorded = conn.execute("SELECT version FROM component_migrations").fetchall()
    conn.close()
    assert recorded == [(1,), (2,), (3,)]


FIXTURE_V2 = Path(__file__).parents[1] / "fixtures" / "stores" / "sqlite-schema-2.db"


def test_a_store_of_storage_schema_2_is_upgraded_in_place_and_takes_removals(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v2.db"
    shutil.copy(FIXTURE_V2, path)
    assert _pragma(path, "user_version") == 2
    with SQLiteEventStore(str(path)) as store:
        assert store.core_migrations_applied == [3]
        assert store.component_versions() == {"eventvault": 3, "snapshots": 1}
        assert verify_chain(store.export_events()) == 7
        snapshots = StoreSnapshotStore(store)
        assert snapshots.latest("account-0", schema_version=1) is not None
        removal = store.truncate_stream("account-0", before=1, actor="ops", reason="upgrade")
        assert (removal.count, removal.record_position) == (1, 8)
        # The snapshot of version 1 includes the removed event 0: it goes with it.
        assert snapshots.latest("account-0", schema_version=1) is None
        assert [e.stream_position for e in store.read_stream("account-0")] == [1]
        store.delete_stream("order-1", hard=True, actor="ops", reason="upgrade")
        assert [info.stream_name for info in store.list_streams()] == [
            "$removals",
            "account-0",
            "account-1",
            "account-2",
        ]
    with SQLiteEventStore(str(path)) as again:
        assert again.core_migrations_applied == []
        exported = list(again.export_events())
        assert verify_chain(exported) == 9
        assert [e.removed_by for e in exported[:7]] == [8, None, None, None, None, None, 9]
        assert exported[6].erased


def test_an_append_with_more_given_ids_than_sqlite_binds_in_one_statement_is_stored(
    tmp_path: Path,
) -> None:
    # SQLite builds before 3.32 (and many distributions' builds) bind at most 999 variables.
    with eventvault.connect(str(tmp_path / "ids.db")) as store:
        assert isinstance(store, SQLiteEventStore)
        store._writer.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
        batch = [NewEvent("Imported", {"n": n}, event_id=uuid.uuid4()) for n in range(2500)]
        first = store.append_to_stream("bulk-1", batch, expected_version=StreamState.ANY)
        assert store.append_to_stream("bulk-1", batch, expected_version=StreamState.ANY) == first
        assert (first.stream_position, store.head_position()) == (2499, 2500)


def test_a_type_filter_longer_than_sqlite_binds_in_one_statement_reads_the_matches() -> None:
    with eventvault.connect("sqlite:///:memory:") as store:
        assert isinstance(store, SQLiteEventStore)
        store._writer.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
        store.append_to_stream(
            "a-1", [NewEvent("Kept", {}), NewEvent("Dropped", {})], expected_version=StreamState.ANY
        )
        types = [f"Other{n}" for n in range(2000)] + ["Kept"]
        assert [e.event_type for e in store.read_all(event_types=types)] == ["Kept"]


def test_a_read_of_damaged_stored_bytes_names_the_stream_and_position(tmp_path: Path) -> None:
    path = tmp_path / "damaged.db"
    with eventvault.connect(str(path)) as store:
        store.append_to_stream(
            "account-1", [NewEvent("A", {})] * 3, expected_version=StreamState.ANY
        )
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE events SET data = X'7B2261223A7D' WHERE stream_position = 1")
    conn.close()
    with eventvault.connect(str(path)) as store:
        with pytest.raises(CorruptEventError) as caught:
            list(store.read_stream("account-1"))
        assert (caught.value.stream_name, caught.value.stream_position) == ("account-1", 1)
        assert caught.value.global_position == 2
        with pytest.raises(CorruptEventError, match=r"'account-1'@1 \(global position 2\)"):
            list(store.read_all())


def test_a_store_of_storage_schema_2_opened_read_only_is_read_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    shutil.copy(FIXTURE_V2, path)
    with SQLiteEventStore(str(path), read_only=True) as store:
        assert [e.stream_position for e in store.read_stream("account-0")] == [0, 1]
        assert [e.stream_position for e in store.read_stream("account-0", backwards=True)] == [
            1,
            0,
        ]
        assert [e.stream_position for e in store.read_stream_payloads("account-0")] == [0, 1]
        assert len(list(store.read_all())) == 7
        assert verify_chain(store.export_events()) == 7
        assert next(info.stream_name for info in store.list_streams()) == "account-0"
        event = store.get_event(stream_name="order-1", stream_position=0)
        assert event is not None and event.removed_by is None
        assert store.get_stream_metadata("account-0") == StreamMetadata()
        assert len(list(store.read_hashes())) == 7
    assert _pragma(path, "user_version") == 2


def _contextlib_calls(work: Callable[[], object]) -> list[str]:
    """The functions of `contextlib` that `work` calls (in this thread)."""
    called: list[str] = []

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event == "call" and frame.f_code.co_filename == contextlib.__file__:
            called.append(frame.f_code.co_qualname)

    sys.setprofile(profile)
    try:
        work()
    finally:
        sys.setprofile(None)
    return called


def test_small_reads_of_a_file_take_a_pooled_reader_without_a_context_manager(
    tmp_path: Path,
) -> None:
    # A generator context manager costs about as much as the rest of a small read; a load
    # from a snapshot makes two of them (the snapshot, then the events after it).
    with eventvault.connect(str(tmp_path / "reads.db")) as store:
        store.append_to_stream("a-1", [NewEvent("A", {})], expected_version=StreamState.ANY)
        store.get_stream_version("a-1")  # the reader pool holds a connection from here on
        assert _contextlib_calls(lambda: store.get_stream_version("a-1")) == []
        assert _contextlib_calls(lambda: store.query("SELECT 1")) == []
        assert _contextlib_calls(lambda: list(store.read_stream("a-1"))) == []


def test_a_failed_read_gives_its_reader_back_and_later_reads_and_forks_go_on(
    tmp_path: Path,
) -> None:
    with eventvault.connect(str(tmp_path / "reads.db")) as store:
        assert isinstance(store, SQLiteEventStore)
        store.append_to_stream("a-1", [NewEvent("A", {})], expected_version=StreamState.ANY)
        assert store.get_stream_version("a-1") == 0
        pooled = list(store._readers)
        with pytest.raises(EventVaultError, match="no such table"):
            store.query("SELECT * FROM no_such_table")
        assert (store._reads_in_flight, store._readers) == (0, pooled)
        store._pause()  # waits for reads in flight: it would hang on a reader never given back
        store._resume()
        assert store.get_stream_version("a-1") == 0
