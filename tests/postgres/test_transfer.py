"""`eventvault import` and `copy` into PostgreSQL: the store is created as a restore tool would,
and a backup that is not whole leaves it empty."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

import eventvault
from tests.cli.cli_harness import SAMPLE, Cli, head, seed
from tests.postgres.conftest import with_options


@pytest.fixture
def cli() -> Cli:
    return Cli()


@pytest.fixture
def source(tmp_path: Path) -> str:
    """A SQLite store holding the `SAMPLE` events."""
    url = str(tmp_path / "bank.db")
    seed(url, SAMPLE)
    return url


def _schema_exists(server_url: str, schema: str) -> bool:
    with psycopg.connect(server_url, autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    return row is not None


def test_copy_into_a_database_without_a_store_creates_it(
    cli: Cli, source: str, server_url: str, schema: str
) -> None:
    target = with_options(server_url, schema=schema)
    assert not _schema_exists(server_url, schema)
    result = cli("copy", source, target)
    assert result.exit_code == 0, result.output
    assert f"copied {len(SAMPLE)} events" in result.stderr
    with eventvault.connect(source) as origin, eventvault.connect(target) as copied:
        assert list(copied.export_events()) == list(origin.export_events())


def test_import_into_a_database_without_a_store_creates_it(
    cli: Cli, source: str, server_url: str, schema: str, tmp_path: Path
) -> None:
    backup = tmp_path / "backup.jsonl"
    assert cli("export", str(backup), "--url", source).exit_code == 0
    target = with_options(server_url, schema=schema)
    result = cli("import", str(backup), "--url", target)
    assert result.exit_code == 0, result.output
    assert head(target) == len(SAMPLE)


def test_an_import_refused_into_a_new_database_store_leaves_it_empty_for_a_retry(
    cli: Cli, source: str, server_url: str, schema: str, tmp_path: Path
) -> None:
    backup = tmp_path / "backup.jsonl"
    assert cli("export", str(backup), "--url", source).exit_code == 0
    whole = backup.read_bytes()
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(b"".join(whole.splitlines(keepends=True)[:-1]))
    target = with_options(server_url, schema=schema)
    refused = cli("import", str(cut), "--url", target)
    assert refused.exit_code == 5
    assert "the closing record is missing" in refused.stderr
    assert head(target) == 0
    retried = cli("import", str(backup), "--url", target)
    assert retried.exit_code == 0, retried.output
    assert head(target) == len(SAMPLE)


def test_copy_into_a_schema_holding_something_else_is_refused_and_creates_nothing(
    cli: Cli, source: str, server_url: str, schema: str
) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'CREATE TABLE "{schema}".invoices (id int)')
    result = cli("copy", source, with_options(server_url, schema=schema))
    assert result.exit_code == 7
    assert "holds tables of something else" in result.stderr
    with psycopg.connect(server_url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (schema,),
        ).fetchall()
    assert tables == [("invoices",)]
