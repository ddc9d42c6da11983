"""`eventvault migrate`: the store's own tables and every component's, on every engine."""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import eventvault
from eventvault.aggregates import StoreSnapshotStore
from eventvault.aggregates.snapshots import SNAPSHOTS
from eventvault.schema import SCHEMAS
from eventvault.server.tokens import TOKENS
from eventvault.store.sqlite import SCHEMA_VERSION

from .cli_harness import Cli

FIXTURE = Path(__file__).parents[1] / "fixtures" / "stores" / "sqlite-schema-1.db"
POSTGRES_URL = os.environ.get("EVENTVAULT_TEST_POSTGRES_URL")


def _rows(output: str) -> dict[str, tuple[str, str]]:
    """component -> (version, applied now), from the table `migrate` prints."""
    rows: dict[str, tuple[str, str]] = {}
    for line in output.splitlines():
        cells = line.split()
        if len(cells) >= 3 and cells[0] in ("eventvault", "schemas", "server_tokens", "snapshots"):
            rows[cells[0]] = (cells[1], " ".join(cells[2:]))
    return rows


def test_migrate_creates_a_new_sqlite_store_with_every_component(cli: Cli, db: str) -> None:
    result = cli("migrate", db)
    assert result.exit_code == 0, result.output
    versions = ", ".join(str(v) for v in range(1, SCHEMA_VERSION + 1))
    assert _rows(result.stdout) == {
        "eventvault": (str(SCHEMA_VERSION), versions),
        "schemas": (str(SCHEMAS.version), "1"),
        "server_tokens": (str(TOKENS.version), "1"),
        "snapshots": (str(SNAPSHOTS.version), "1"),
    }
    again = cli("migrate", db)
    assert again.exit_code == 0, again.output
    assert _rows(again.stdout)["snapshots"] == (str(SNAPSHOTS.version), "-")
    assert "no migration applied" in again.stdout


def test_migrate_upgrades_a_store_written_by_0_1_0_in_place(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    shutil.copy(FIXTURE, path)
    result = cli("migrate", str(path))
    assert result.exit_code == 0, result.output
    rows = _rows(result.stdout)
    assert rows["eventvault"] == (str(SCHEMA_VERSION), "2")
    # 0.1.0 had made the snapshots table already: version 1 adopts it with its rows.
    assert rows["snapshots"] == ("1", "1")
    with eventvault.connect(str(path)) as store:
        assert [e.event_type for e in store.read_stream("account-0")] == [
            "AccountOpened",
            "MoneyDeposited",
        ]
        snapshot = StoreSnapshotStore(store).latest("account-0", schema_version=1)
        assert snapshot is not None and snapshot.version == 1


def test_migrate_takes_the_url_from_eventvault_url(cli: Cli, db: str) -> None:
    result = cli("migrate", env={"EVENTVAULT_URL": db})
    assert result.exit_code == 0, result.output
    with sqlite3.connect(db) as conn:
        recorded = conn.execute(
            "SELECT component, version FROM component_migrations ORDER BY 1, 2"
        ).fetchall()
    conn.close()
    expected = [("eventvault", v) for v in range(1, SCHEMA_VERSION + 1)] + [
        ("projections", 1),
        ("schemas", 1),
        ("server_tokens", 1),
        ("snapshots", 1),
    ]
    assert recorded == expected


def test_migrate_of_an_in_memory_store_exits_2(cli: Cli) -> None:
    result = cli("migrate", "memory://")
    assert result.exit_code == 2
    assert "nothing to migrate" in result.stderr


def test_migrate_refuses_a_schema_for_a_sqlite_store(cli: Cli, db: str) -> None:
    result = cli("migrate", db, "--schema", "events")
    assert result.exit_code == 2
    assert "only a PostgreSQL store has schemas" in result.stderr
    assert not Path(db).exists()


def test_migrate_of_an_unknown_scheme_exits_2(cli: Cli) -> None:
    result = cli("migrate", "mysql://app@db/bank")
    assert result.exit_code == 2
    assert "unknown scheme 'mysql'" in result.stderr


def test_migrate_without_postgres_support_exits_2_naming_the_extra(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "eventvault.store.postgres", None)
    result = cli("migrate", "postgresql://app@db.internal/bank")
    assert result.exit_code == 2
    assert "pip install 'eventvault[postgres]'" in result.stderr


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    if POSTGRES_URL is None:
        if os.environ.get("EVENTVAULT_REQUIRE_POSTGRES"):
            pytest.fail(
                "EVENTVAULT_REQUIRE_POSTGRES is set but EVENTVAULT_TEST_POSTGRES_URL is not"
            )
        pytest.skip("set EVENTVAULT_TEST_POSTGRES_URL to migrate a PostgreSQL store")
    schema = f"ev_migrate_{uuid.uuid4().hex[:12]}"
    yield schema
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.mark.postgres
def test_migrate_creates_a_postgres_schema_with_every_component(
    cli: Cli, postgres_schema: str
) -> None:
    assert POSTGRES_URL is not None
    result = cli("migrate", POSTGRES_URL, "--schema", postgres_schema)
    assert result.exit_code == 0, result.output
    rows = _rows(result.stdout)
    assert rows["eventvault"][1] == "1, 2, 3"
    assert rows["snapshots"] == ("1", "1")
    again = cli("migrate", POSTGRES_URL, "--schema", postgres_schema)
    assert "no migration applied" in again.stdout
    # Opened without auto_migrate, the store and its snapshot table are ready.
    separator = "&" if "?" in POSTGRES_URL else "?"
    with eventvault.connect(f"{POSTGRES_URL}{separator}schema={postgres_schema}") as store:
        assert store.component_versions() == {
            "eventvault": 3,
            "projections": 1,
            "schemas": 1,
            "server_tokens": 1,
            "snapshots": 1,
        }
        assert StoreSnapshotStore(store).latest("x-1", schema_version=1) is None
