"""Stores for the aggregate tests: every test that asks for `store` runs on memory and SQLite."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import eventvault
from eventvault import EventStore

POSTGRES_URL = os.environ.get("EVENTVAULT_TEST_POSTGRES_URL")


@pytest.fixture(params=["memory", "sqlite-file", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    """An empty store of each engine the domain layer supports snapshots for."""
    schema: str | None = None
    if request.param == "memory":
        url = "memory://"
    elif request.param == "sqlite-file":
        url = str(tmp_path / "store.db")
    else:
        if POSTGRES_URL is None:
            if os.environ.get("EVENTVAULT_REQUIRE_POSTGRES"):
                pytest.fail(
                    "EVENTVAULT_REQUIRE_POSTGRES is set but EVENTVAULT_TEST_POSTGRES_URL is not"
                )
            pytest.skip("set EVENTVAULT_TEST_POSTGRES_URL to run the domain layer on PostgreSQL")
        schema = f"ev_aggtest_{uuid.uuid4().hex[:12]}"
        separator = "&" if "?" in POSTGRES_URL else "?"
        url = f"{POSTGRES_URL}{separator}schema={schema}&auto_migrate=true"
    try:
        with eventvault.connect(url) as opened:
            yield opened
    finally:
        if schema is not None and POSTGRES_URL is not None:
            import psycopg

            with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[EventStore]:
    """An empty SQLite file store."""
    with eventvault.connect(str(tmp_path / "store.db")) as opened:
        yield opened
