"""Engine details: index use, moving between engines, errors, settings."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from pathlib import Path

import msgspec
import psycopg
import pytest

from eventvault import NewEvent, StreamAppend, StreamState, connect
from eventvault.errors import (
    CorruptEventError,
    HashChainError,
    InvalidEventError,
    NotAnEventVaultDatabaseError,
    NotEmptyError,
    StorageError,
    StoreUnavailableError,
    WrongExpectedVersionError,
)
from eventvault.serialization import verify_chain
from eventvault.store._append import PendingAppend
from eventvault.store.postgres import PostgresEventStore, migrate
from eventvault.store.postgres import _connections as postgres_connections
from eventvault.store.postgres import _writer as postgres_writer
from tests.postgres.conftest import with_options


def _fill(store: PostgresEventStore, streams: int = 20, per_stream: int = 5) -> None:
    for n in range(per_stream):
        for s in range(streams):
            store.append_to_stream(
                f"acct-{s}",
                [NewEvent("Deposited", {"amount": n, "note": "é ✓"}, metadata={"actor": "t"})],
                expected_version=StreamState.ANY,
            )


def _plan(admin: psycopg.Connection[tuple[object, ...]], sql: str) -> str:
    admin.execute("SET enable_seqscan = off")
    rows = admin.execute(f"EXPLAIN {sql}").fetchall()
    admin.execute("RESET enable_seqscan")
    return "\n".join(str(row[0]) for row in rows)


def test_reading_a_stream_uses_the_stream_index(
    store: PostgresEventStore, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    _fill(store)
    plan = _plan(
        admin,
        f"SELECT * FROM \"{store.schema}\".events WHERE stream_name = 'acct-1' "
        "AND stream_position >= 0 ORDER BY stream_position LIMIT 10",
    )
    assert "events_stream_uq" in plan


def test_reading_the_log_uses_the_primary_key(
    store: PostgresEventStore, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    _fill(store)
    plan = _plan(
        admin,
        f'SELECT * FROM "{store.schema}".events WHERE global_position > 10 '
        "ORDER BY global_position LIMIT 10",
    )
    assert "events_pk" in plan


def test_copy_to_sqlite_and_back_keeps_every_byte_and_hash(
    store: PostgresEventStore, server_url: str, schema: str, tmp_path: Path
) -> None:
    _fill(store)
    original = list(store.export_events())
    with connect(str(tmp_path / "copy.db")) as sqlite_store:
        assert sqlite_store.import_events(store.export_events()) == len(original)
        target_url = with_options(server_url, schema=f"{schema}_back", auto_migrate="true")
        try:
            with connect(target_url) as back:
                assert back.import_events(sqlite_store.export_events()) == len(original)
                copied = list(back.export_events())
                appended = back.append_to_stream(
                    "acct-1", [NewEvent("After", {})], expected_version=4
                )
        finally:
            with psycopg.connect(server_url, autocommit=True) as admin:
                admin.execute(f'DROP SCHEMA IF EXISTS "{schema}_back" CASCADE')
    assert copied == original
    assert verify_chain(copied) == len(original)
    assert appended.global_position > original[-1].global_position


def test_import_into_a_store_with_events_raises_not_empty(store: PostgresEventStore) -> None:
    _fill(store, streams=1, per_stream=1)
    with pytest.raises(NotEmptyError):
        store.import_events(store.export_events())


def test_a_failed_import_leaves_the_store_empty_and_writable(
    store: PostgresEventStore, tmp_path: Path
) -> None:
    with connect(str(tmp_path / "src.db")) as source:
        source.append_to_stream("a-1", [NewEvent("E", {})], expected_version=StreamState.ANY)
        exported = list(source.export_events())
    tampered = [msgspec.structs.replace(exported[0], hash="00" * 32)]
    with pytest.raises(HashChainError):
        store.import_events(tampered)
    assert store.head_position() == 0
    result = store.append_to_stream("a-1", [NewEvent("E", {})], expected_version=StreamState.ANY)
    assert result.global_position == 1


def test_group_commit_fails_a_wrong_version_append_alone(store: PostgresEventStore) -> None:
    store.append_to_stream("a-1", [NewEvent("E", {})], expected_version=StreamState.NO_STREAM)
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def append(n: int) -> None:
        barrier.wait()
        try:
            if n % 2:
                store.append_to_stream(f"b-{n}", [NewEvent("E", {})], expected_version=5)
            else:
                store.append_to_stream(
                    f"b-{n}", [NewEvent("E", {})], expected_version=StreamState.NO_STREAM
                )
            outcomes.append("ok")
        except WrongExpectedVersionError:
            outcomes.append("wrong")

    threads = [threading.Thread(target=append, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok"] * 4 + ["wrong"] * 4
    assert [e.global_position for e in store.read_all()] == list(range(1, 6))


def test_a_failed_multi_stream_append_leaves_no_gap_in_positions(
    store: PostgresEventStore,
) -> None:
    store.append_to_stream("a-1", [NewEvent("E", {})], expected_version=StreamState.NO_STREAM)
    with pytest.raises(WrongExpectedVersionError):
        store.append_to_streams(
            [
                StreamAppend("b-1", [NewEvent("E", {})], StreamState.NO_STREAM),
                StreamAppend("a-1", [NewEvent("E", {})], StreamState.NO_STREAM),
            ]
        )
    result = store.append_to_stream("c-1", [NewEvent("E", {})], expected_version=StreamState.ANY)
    assert result.global_position == 2


def test_an_unreachable_server_raises_storage_error() -> None:
    with pytest.raises(StorageError):
        PostgresEventStore("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_the_pool_never_opens_more_than_pool_max_connections(
    store_url: str, admin: psycopg.Connection[tuple[object, ...]], schema: str
) -> None:
    store = PostgresEventStore(store_url, pool_max=2)
    try:
        threads = [
            threading.Thread(target=lambda: list(store.read_all()) and None) for _ in range(8)
        ]
        _fill(store, streams=5, per_stream=2)
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            (f"eventvault/{schema}",),
        ).fetchone()
        assert row is not None
        assert int(str(row[0])) <= 2
    finally:
        store.close()


def test_an_application_name_in_the_url_is_kept(
    server_url: str, schema: str, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    url = with_options(server_url, schema=schema, auto_migrate="true", application_name="billing")
    with connect(url) as store:
        store.head_position()
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'billing'"
        ).fetchone()
    assert row is not None
    assert int(str(row[0])) >= 1


def test_a_head_remembered_by_one_store_and_moved_by_another_is_caught(
    store_url: str,
) -> None:
    with PostgresEventStore(store_url) as first, PostgresEventStore(store_url) as second:
        first.append_to_stream("s-1", [NewEvent("A", {})], expected_version=StreamState.ANY)
        first.append_to_stream("s-1", [NewEvent("B", {})], expected_version=0)
        second.append_to_stream("s-1", [NewEvent("C", {})], expected_version=1)
        # `first` remembers version 1; its fast path must not trust that.
        with pytest.raises(WrongExpectedVersionError) as caught:
            first.append_to_stream("s-1", [NewEvent("D", {})], expected_version=1)
        assert caught.value.actual == 2
        result = first.append_to_stream(
            "s-1", [NewEvent("E", {})], expected_version=StreamState.ANY
        )
        assert result.stream_position == 3
        assert [e.event_type for e in first.read_stream("s-1")] == ["A", "B", "C", "E"]
        assert verify_chain(first.export_events()) == 4


def test_a_retry_through_the_fast_path_returns_the_original_result(
    store: PostgresEventStore,
) -> None:
    batch = [NewEvent("Paid", {"n": n}, event_id=uuid.uuid4()) for n in range(2)]
    store.append_to_stream("pay-1", [NewEvent("Opened", {})], expected_version=StreamState.ANY)
    first = store.append_to_stream("pay-1", batch, expected_version=0)
    again = store.append_to_stream("pay-1", batch, expected_version=0)
    assert again == first
    assert store.get_stream_version("pay-1") == 2


def test_names_round_trip_whatever_client_encoding_the_url_asks_for(
    server_url: str, schema: str
) -> None:
    url = with_options(server_url, schema=schema, auto_migrate="true", client_encoding="LATIN1")
    with PostgresEventStore(url) as store:
        # NO_STREAM takes the fast path (binary arrays), ANY on an unknown head the careful one.
        store.append_to_stream(
            "café-1", [NewEvent("Évènement", {})], expected_version=StreamState.NO_STREAM
        )
        store.append_to_stream(
            "日本-1", [NewEvent("イベント", {})], expected_version=StreamState.ANY
        )
        assert [s.stream_name for s in store.list_streams()] == ["café-1", "日本-1"]
        assert [e.event_type for e in store.read_stream("café-1")] == ["Évènement"]
        assert verify_chain(store.export_events()) == 2


def test_a_database_that_is_not_utf8_is_refused_with_the_reason(
    server_url: str, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    name = f"ev_latin1_{uuid.uuid4().hex[:8]}"
    admin.execute(
        f"CREATE DATABASE {name} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
    )
    try:
        url = server_url.rsplit("/", 1)[0] + f"/{name}?auto_migrate=true"
        with pytest.raises(NotAnEventVaultDatabaseError, match="encoding is LATIN1"):
            PostgresEventStore(url)
        with pytest.raises(NotAnEventVaultDatabaseError, match="needs a UTF8 database"):
            migrate(url)
    finally:
        admin.execute(f"DROP DATABASE {name}")


def test_an_append_over_the_engines_size_limit_is_refused_alone(
    store: PostgresEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres_writer, "MAX_APPEND_BYTES", 1000)
    with pytest.raises(InvalidEventError, match="over the PostgreSQL engine's limit of 1000"):
        store.append_to_stream(
            "big-1",
            [NewEvent("E", {"x": "y" * 600}) for _ in range(2)],
            expected_version=StreamState.ANY,
        )
    assert store.head_position() == 0
    result = store.append_to_stream(
        "big-1", [NewEvent("E", {"x": "y" * 600})], expected_version=StreamState.ANY
    )
    assert result.stream_position == 0


def test_a_group_commit_batch_is_split_into_transactions_of_bounded_size(
    store: PostgresEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres_writer, "MAX_BATCH_BYTES", 2000)
    groups: list[int] = []
    commit_group = store._writer._commit_group

    def recording(requests: list[list[PendingAppend]]) -> list[object]:
        groups.append(sum(len(e.data) for r in requests for a in r for e in a.events))
        return commit_group(requests)  # type: ignore[return-value]

    monkeypatch.setattr(store._writer, "_commit_group", recording)
    start = threading.Barrier(8)

    def write(index: int) -> None:
        start.wait()
        for _ in range(10):
            store.append_to_stream(
                f"s-{index}", [NewEvent("E", {"x": "y" * 500})], expected_version=StreamState.ANY
            )

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.head_position() == 80
    assert sum(1 for e in store.read_all()) == 80
    assert max(groups) <= 2000


def test_a_read_of_damaged_stored_bytes_names_the_stream_and_position(
    store: PostgresEventStore, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    store.append_to_stream("account-1", [NewEvent("A", {})] * 3, expected_version=StreamState.ANY)
    admin.execute(
        f'UPDATE "{store.schema}".events SET metadata = %s WHERE stream_position = 2', [b"[1]"]
    )
    with pytest.raises(CorruptEventError) as caught:
        list(store.read_stream("account-1"))
    assert (caught.value.stream_name, caught.value.stream_position) == ("account-1", 2)
    assert caught.value.global_position == 3
    with pytest.raises(CorruptEventError, match=r"'account-1'@2 \(global position 3\)"):
        list(store.read_all())


def test_opening_a_store_whose_server_is_down_fails_at_once_naming_the_server() -> None:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError, match=rf"127\.0\.0\.1:{port}: .*refused") as caught:
        PostgresEventStore(f"postgresql://nobody@127.0.0.1:{port}/db")
    assert time.monotonic() - started < 5
    assert caught.value.location == f"postgresql://nobody@127.0.0.1:{port}/db"


def test_a_pool_whose_connections_are_all_busy_still_says_so(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server answers, so the wait goes on past unavailable_timeout to the pool's limit.
    monkeypatch.setattr(postgres_connections, "POOL_TIMEOUT", 1.5)
    url = with_options(store_url, pool_max="1", unavailable_timeout="0.5")
    with PostgresEventStore(url) as store, store._connections.connection():
        started = time.monotonic()
        with pytest.raises(StorageError, match="no connection free in the pool") as caught:
            store.get_stream_version("a-1")
        assert not isinstance(caught.value, StoreUnavailableError)
        assert 1.4 < time.monotonic() - started < 5
