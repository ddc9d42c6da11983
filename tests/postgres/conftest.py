"""Fixtures of the PostgreSQL engine tests: a fresh schema per test on the test server.

The tests need `EVENTVAULT_TEST_POSTGRES_URL` (start a throwaway server with
`export EVENTVAULT_TEST_POSTGRES_URL=$(scripts/postgres-test-cluster start)`); without it they
are skipped, unless `EVENTVAULT_REQUIRE_POSTGRES` is set (as in CI), which makes them fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest

from eventvault.store.postgres import PostgresEventStore

POSTGRES_URL = os.environ.get("EVENTVAULT_TEST_POSTGRES_URL")


@pytest.fixture
def server_url() -> str:
    """The test server's URL (no eventvault options)."""
    if POSTGRES_URL is None:
        if os.environ.get("EVENTVAULT_REQUIRE_POSTGRES"):
            pytest.fail(
                "EVENTVAULT_REQUIRE_POSTGRES is set but EVENTVAULT_TEST_POSTGRES_URL is not"
            )
        pytest.skip(
            "set EVENTVAULT_TEST_POSTGRES_URL (scripts/postgres-test-cluster start) to run the "
            "PostgreSQL engine tests"
        )
    return POSTGRES_URL


def with_options(url: str, **options: str) -> str:
    """`url` with eventvault options added as query parameters."""
    query = "&".join(f"{key}={value}" for key, value in options.items())
    return f"{url}{'&' if '?' in url else '?'}{query}"


@pytest.fixture
def new_schema(server_url: str) -> Iterator[Callable[[], str]]:
    """Makes fresh schema names; drops every schema made when the test ends."""
    made: list[str] = []

    def make() -> str:
        name = f"ev_pgtest_{uuid.uuid4().hex[:12]}"
        made.append(name)
        return name

    yield make
    with psycopg.connect(server_url, autocommit=True) as conn:
        for name in made:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def schema(new_schema: Callable[[], str]) -> str:
    """A fresh schema name for this test."""
    return new_schema()


@pytest.fixture
def store_url(server_url: str, schema: str) -> str:
    """The URL of a fresh store that creates its schema on first use."""
    return with_options(server_url, schema=schema, auto_migrate="true")


@pytest.fixture
def store(store_url: str) -> Iterator[PostgresEventStore]:
    """A fresh store in its own schema."""
    opened = PostgresEventStore(store_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def admin(server_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A plain autocommit connection to the test server."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        yield conn
