"""PostgreSQL stores opened read-only: read-only sessions, and the same refusal as every engine."""

from __future__ import annotations

import psycopg
import pytest

import eventvault
from eventvault import NewEvent, StreamState
from eventvault.errors import (
    MigrationRequiredError,
    NotAnEventVaultDatabaseError,
    ReadOnlyStoreError,
)
from eventvault.store.postgres import PostgresEventStore
from tests.cli.cli_harness import Cli
from tests.postgres.conftest import with_options
from tests.store.test_read_only import PROBE


def test_a_read_only_store_reads_and_refuses_appends_without_writing(
    store: PostgresEventStore, store_url: str
) -> None:
    store.append_to_stream(
        "account-1", [NewEvent("Opened", {})], expected_version=StreamState.NO_STREAM
    )
    with eventvault.connect(store_url, read_only=True) as reader:
        assert reader.read_only
        assert [e.event_type for e in reader.read_stream("account-1")] == ["Opened"]
        with pytest.raises(ReadOnlyStoreError, match="opened with read_only=True"):
            reader.append_to_stream("account-1", [NewEvent("Closed", {})], expected_version=0)
        with pytest.raises(ReadOnlyStoreError):
            reader.import_events([])
    assert store.get_stream_version("account-1") == 0


def test_every_session_of_a_read_only_store_is_read_only_on_the_server(
    store: PostgresEventStore, store_url: str
) -> None:
    with eventvault.connect(store_url, read_only=True) as reader:
        assert isinstance(reader, PostgresEventStore)
        assert reader._fetch("SHOW default_transaction_read_only", ())[0][0] == "on"
        # A write that reaches the server anyway is refused there, as a read-only store.
        with pytest.raises(ReadOnlyStoreError, match="read-only"):
            reader._execute(f'CREATE TABLE "{reader.schema}".intruder (x int)', ())


def test_a_read_only_store_never_migrates(server_url: str, schema: str) -> None:
    url = with_options(server_url, schema=schema, auto_migrate="true")
    with pytest.raises(NotAnEventVaultDatabaseError, match="holds no eventvault store"):
        eventvault.connect(url, read_only=True)
    with psycopg.connect(server_url) as conn:
        found = conn.execute(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = %s", (schema,)
        ).fetchone()
    assert found == (0,)


def test_reading_commands_work_on_postgres(store: PostgresEventStore, store_url: str) -> None:
    store.append_to_stream("account-1", [NewEvent("Opened", {})], expected_version=StreamState.ANY)
    cli = Cli()
    for command in (("stats",), ("log",), ("streams",), ("read", "account-1")):
        result = cli(*command, "--url", store_url)
        assert result.exit_code == 0, result.output


def test_a_read_only_store_migrates_no_component_whatever_its_url_says(
    store: PostgresEventStore, store_url: str
) -> None:
    assert "auto_migrate=true" in store_url
    with eventvault.connect(store_url, read_only=True) as reader:
        with pytest.raises(MigrationRequiredError):
            reader.use(PROBE)
        with pytest.raises(ReadOnlyStoreError):
            reader.run_transaction(lambda tx: tx.execute("SELECT 1"))
    assert "probe" not in store.component_versions()
