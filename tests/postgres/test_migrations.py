"""Schema management: versioned migrations, the stored version, schemas side by side."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

# Registers the projection tables, which `migrate` applies with every registered component.
import eventvault.projections  # noqa: F401
from eventvault import NewEvent, StreamState, connect
from eventvault.aggregates import StoreSnapshotStore
from eventvault.errors import NotAnEventVaultDatabaseError, SchemaVersionError
from eventvault.serialization import verify_chain
from eventvault.store.migrate import migrate as migrate_store
from eventvault.store.postgres import SCHEMA_VERSION, PostgresEventStore, migrate
from eventvault.store.seam import known_components
from tests.postgres.conftest import with_options


def test_migrate_creates_the_schema_and_returns_the_versions_applied(
    server_url: str, schema: str
) -> None:
    assert migrate(server_url, schema=schema) == list(range(1, SCHEMA_VERSION + 1))


def test_migrate_twice_applies_nothing_the_second_time(server_url: str, schema: str) -> None:
    migrate(server_url, schema=schema)
    assert migrate(server_url, schema=schema) == []


def test_migrate_reads_the_schema_from_the_url(
    server_url: str, schema: str, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    migrate(with_options(server_url, schema=schema))
    row = admin.execute(f'SELECT max(version) FROM "{schema}".schema_version').fetchone()
    assert row == (SCHEMA_VERSION,)


def test_concurrent_migrations_apply_each_version_once(server_url: str, schema: str) -> None:
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(migrate(server_url, schema=schema))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results) == [[], [], [], list(range(1, SCHEMA_VERSION + 1))]


def test_opening_a_missing_schema_without_auto_migrate_says_to_run_migrate(
    server_url: str, schema: str
) -> None:
    with pytest.raises(NotAnEventVaultDatabaseError, match="eventvault migrate"):
        PostgresEventStore(with_options(server_url, schema=schema))


def test_opening_a_migrated_schema_works_without_auto_migrate(server_url: str, schema: str) -> None:
    migrate(server_url, schema=schema)
    with connect(with_options(server_url, schema=schema)) as store:
        assert store.head_position() == 0


def test_a_schema_newer_than_the_code_raises_schema_version_error(
    server_url: str, schema: str, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    migrate(server_url, schema=schema)
    admin.execute(f'INSERT INTO "{schema}".schema_version (version) VALUES (999)')
    with pytest.raises(SchemaVersionError) as raised:
        PostgresEventStore(with_options(server_url, schema=schema, auto_migrate="true"))
    assert (raised.value.found, raised.value.supported) == (999, SCHEMA_VERSION)
    with pytest.raises(SchemaVersionError):
        migrate(server_url, schema=schema)


def test_migrate_refuses_a_schema_holding_other_tables(
    server_url: str, schema: str, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    admin.execute(f'CREATE SCHEMA "{schema}"')
    admin.execute(f'CREATE TABLE "{schema}".invoices (id int)')
    with pytest.raises(NotAnEventVaultDatabaseError, match="something else"):
        migrate(server_url, schema=schema)


def test_stores_in_two_schemas_of_one_database_are_independent(
    server_url: str, new_schema: Callable[[], str]
) -> None:
    first = with_options(server_url, schema=new_schema(), auto_migrate="true")
    second = with_options(server_url, schema=new_schema(), auto_migrate="true")
    with connect(first) as one, connect(second) as two:
        one.append_to_stream("a-1", [NewEvent("A", {})], expected_version=StreamState.NO_STREAM)
        two.append_to_stream("a-1", [NewEvent("B", {})], expected_version=StreamState.NO_STREAM)
        assert [e.event_type for e in one.read_all()] == ["A"]
        assert [e.event_type for e in two.read_all()] == ["B"]
        assert one.head_position() == two.head_position() == 1


def test_the_schema_has_named_constraints_and_indexes(
    store: PostgresEventStore, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    rows = admin.execute(
        "SELECT conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
        "WHERE n.nspname = %s",
        (store.schema,),
    ).fetchall()
    names = {str(row[0]) for row in rows}
    assert {"events_pk", "events_stream_uq", "events_event_id_uq", "streams_pk"} <= names


FIXTURE_0_1_0 = Path(__file__).parents[1] / "fixtures" / "stores" / "postgres-schema-2.sql"


def _schema_of_0_1_0(admin: psycopg.Connection[tuple[object, ...]], schema: str) -> None:
    admin.execute(f'CREATE SCHEMA "{schema}"')
    admin.execute(FIXTURE_0_1_0.read_text().replace("{schema}", f'"{schema}"'))


def test_a_schema_written_by_0_1_0_is_upgraded_in_place(
    server_url: str, schema: str, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    _schema_of_0_1_0(admin, schema)
    url = with_options(server_url, schema=schema)
    with pytest.raises(SchemaVersionError, match="eventvault migrate"):
        PostgresEventStore(url)
    with PostgresEventStore(url, auto_migrate=True) as store:
        assert store.core_migrations_applied == [3]
        assert verify_chain(store.export_events()) == 7
        # 0.1.0 made the snapshots table with the store's own; the component adopts it.
        snapshot = StoreSnapshotStore(store).latest("account-0", schema_version=1)
        assert snapshot is not None and snapshot.version == 1
        assert store.component_versions() == {"eventvault": 3, "snapshots": 1}
        result = store.append_to_stream(
            "account-0", [NewEvent("MoneyDeposited", {"amount": 1})], expected_version=1
        )
        assert (result.stream_position, result.global_position) == (2, 8)
        moved = store.run_transaction(
            lambda tx: tx.append_to_stream(
                "order-1", [NewEvent("OrderShipped", {})], expected_version=0
            )
        )
        assert moved.global_position == 9
        assert verify_chain(store.export_events()) == 9


def test_migrate_of_a_schema_written_by_0_1_0_applies_what_is_missing(
    server_url: str, schema: str, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    _schema_of_0_1_0(admin, schema)
    result = migrate_store(with_options(server_url, schema=schema))
    # Every component registered in this process (which the tests that ran before decide).
    assert [(step.component, step.version) for step in result.applied] == [
        ("eventvault", 3),
        *((component.name, 1) for component in known_components()),
    ]
    with PostgresEventStore(with_options(server_url, schema=schema)) as store:
        assert [e.event_type for e in store.read_stream("account-2")] == [
            "AccountOpened",
            "MoneyDeposited",
        ]
