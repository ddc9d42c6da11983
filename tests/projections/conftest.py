"""Stores the projection tests run on (memory, SQLite file, PostgreSQL) and where read models
live (the store's database, a SQLite file beside it, a PostgreSQL database beside it)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import eventvault
from eventvault import EventStore

POSTGRES_URL = os.environ.get("EVENTVAULT_TEST_POSTGRES_URL") or None


def require_postgres() -> str:
    """The test server's URL, or skip (fail where PostgreSQL is required)."""
    if POSTGRES_URL is None:
        if os.environ.get("EVENTVAULT_REQUIRE_POSTGRES"):
            pytest.fail(
                "EVENTVAULT_REQUIRE_POSTGRES is set but EVENTVAULT_TEST_POSTGRES_URL is not"
            )
        pytest.skip("set EVENTVAULT_TEST_POSTGRES_URL to run the projection tests on PostgreSQL")
    return POSTGRES_URL


@pytest.fixture
def pg_schemas() -> Iterator[Callable[[], str]]:
    """Makes fresh PostgreSQL schema names; drops them all at the end."""
    made: list[str] = []

    def make() -> str:
        name = f"ev_proj_{uuid.uuid4().hex[:12]}"
        made.append(name)
        return name

    yield make
    if made and POSTGRES_URL is not None:
        import psycopg

        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            for name in made:
                conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def pg_url(schema: str, **options: str) -> str:
    """The test server's URL with a schema and options."""
    base = require_postgres()
    query = "&".join([f"schema={schema}", *(f"{k}={v}" for k, v in options.items())])
    return f"{base}{'&' if '?' in base else '?'}{query}"


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path, pg_schemas: Callable[[], str]) -> str:
    """A fresh store of each engine."""
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    return pg_url(pg_schemas(), auto_migrate="true")


@pytest.fixture
def store(store_url: str) -> Iterator[EventStore]:
    with eventvault.connect(store_url) as opened:
        yield opened


@pytest.fixture(params=["store", "sqlite-beside", "postgres-beside"])
def read_model_url(
    request: pytest.FixtureRequest, tmp_path: Path, pg_schemas: Callable[[], str]
) -> str | None:
    """Where a read model lives: the store's database (None), or a database beside it."""
    if request.param == "store":
        return None
    if request.param == "sqlite-beside":
        return f"sqlite:///{tmp_path / 'reports.db'}"
    return pg_url(pg_schemas())
