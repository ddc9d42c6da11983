"""Databases beside the store: the seam's interface on a SQLite file or a PostgreSQL database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from eventvault import NewEvent, StreamState
from eventvault.errors import InvalidURLError, StoreClosedError, TransactionUsageError
from eventvault.projections import PROJECTIONS
from eventvault.store.database import connect_database
from eventvault.store.seam import Transaction

from .conftest import pg_url


@pytest.fixture(params=["sqlite", "sqlite-memory", "postgres"])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, pg_schemas: Callable[[], str]
) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "reports.db")
    if request.param == "sqlite-memory":
        return "sqlite:///:memory:"
    return pg_url(pg_schemas())


def test_a_database_migrates_components_and_commits_or_rolls_back_whole(database_url: str) -> None:
    with connect_database(database_url) as db:
        db.use(PROJECTIONS)
        db.use(PROJECTIONS)  # once per database object
        placeholder = "?" if db.dialect == "sqlite" else "%s"
        insert = (
            "INSERT INTO {schema}.projection_versions (projection, active_version, switched_at) "
            f"VALUES ({placeholder}, 1, 0)"
        )

        def write_then_fail(tx: Transaction) -> None:
            tx.execute(insert, ("kept-not",))
            raise RuntimeError("the work failed")

        with pytest.raises(RuntimeError, match="the work failed"):
            db.run_transaction(write_then_fail)
        assert db.run_transaction(lambda tx: tx.execute(insert, ("kept",))) == 1
        rows = db.query("SELECT projection FROM {schema}.projection_versions")
        assert rows == [("kept",)]


def test_a_database_beside_the_store_refuses_appends(database_url: str) -> None:
    with connect_database(database_url) as db:

        def append(tx: Transaction) -> None:
            tx.append_to_stream("a-1", [NewEvent("E", {})], expected_version=StreamState.ANY)

        with pytest.raises(TransactionUsageError, match="holds no events"):
            db.run_transaction(append)


def test_components_are_recorded_once_across_database_objects(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'reports.db'}"
    with connect_database(url) as first, connect_database(url) as second:
        first.use(PROJECTIONS)
        second.use(PROJECTIONS)
        assert first.query("SELECT component, version FROM component_migrations") == [
            ("projections", 1)
        ]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "non-empty"),
        ("memory://", "SQLite or PostgreSQL, not 'memory'"),
        ("mysql://x/y", "not 'mysql'"),
        ("sqlite:///x.db?synchronous=OFF", "no options"),
        ("sqlite://", "no file named"),
    ],
)
def test_bad_database_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(InvalidURLError, match=message):
        connect_database(url)


def test_a_closed_database_refuses_work(tmp_path: Path) -> None:
    db = connect_database(str(tmp_path / "reports.db"))
    db.close()
    db.close()
    with pytest.raises(StoreClosedError, match="closed"):
        db.query("SELECT 1")
