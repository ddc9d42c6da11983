"""Stores for the schema registry's tests: every test that asks for `store` or `url` runs on
memory, a SQLite file, SQLite in memory and PostgreSQL (when EVENTVAULT_TEST_POSTGRES_URL is
set)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import eventvault
from eventvault import EventStore

POSTGRES_URL = os.environ.get("EVENTVAULT_TEST_POSTGRES_URL")
ENGINES = ["memory", "sqlite-file", "sqlite-memory", "postgres"]


def _skip_without_postgres() -> None:
    if POSTGRES_URL is None:
        if os.environ.get("EVENTVAULT_REQUIRE_POSTGRES"):
            pytest.fail(
                "EVENTVAULT_REQUIRE_POSTGRES is set but EVENTVAULT_TEST_POSTGRES_URL is not"
            )
        pytest.skip("set EVENTVAULT_TEST_POSTGRES_URL to run the registry on PostgreSQL")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The URL of a fresh PostgreSQL schema (auto-migrating), dropped afterwards."""
    _skip_without_postgres()
    assert POSTGRES_URL is not None
    schema = f"ev_schematest_{uuid.uuid4().hex[:12]}"
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}schema={schema}&auto_migrate=true"
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=ENGINES)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty store of each engine (memory and SQLite in memory: one per open)."""
    if request.param == "memory":
        yield "memory://"
    elif request.param == "sqlite-memory":
        yield "sqlite:///:memory:"
    elif request.param == "sqlite-file":
        yield str(tmp_path / "store.db")
    else:
        yield request.getfixturevalue("postgres_url")


@pytest.fixture
def store(url: str) -> Iterator[EventStore]:
    """An empty store of each engine."""
    with eventvault.connect(url) as opened:
        yield opened


@pytest.fixture(params=["sqlite-file", "postgres"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a store that several store objects and processes can open."""
    if request.param == "sqlite-file":
        yield str(tmp_path / "shared.db")
    else:
        yield request.getfixturevalue("postgres_url")
