"""The engines the contract suite runs on: memory, SQLite file, SQLite :memory:, PostgreSQL,
and a toy engine that lives outside the package (tests/engines/toy.py), opened by a factory."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from eventvault import EventStore
from eventvault.testing.contract import EngineSpec
from tests.engines.toy import ToyEventStore, ToyLog

POSTGRES_URL = os.environ.get("EVENTVAULT_TEST_POSTGRES_URL")
ENGINES = ["memory", "sqlite-file", "sqlite-memory", "postgres", "toy"]


def _toy_engine() -> EngineSpec:
    """The toy engine, opened without `connect`: each location names a log of the test."""
    logs: dict[str, ToyLog] = {}
    counter = iter(range(10**9))

    def open_toy(location: str, *, max_event_bytes: int) -> EventStore:
        log = logs.setdefault(location, ToyLog())
        return ToyEventStore(log, f"toy://{location}", max_event_bytes=max_event_bytes)

    def new_location() -> str:
        return f"fresh-{next(counter)}"

    return EngineSpec(
        "toy", "store", durable=True, multiprocess=False, new_url=new_location, factory=open_toy
    )


def _postgres_schemas() -> tuple[Callable[[], str], Callable[[], None]]:
    """A maker of URLs of fresh PostgreSQL schemas, and a function that drops them all."""
    assert POSTGRES_URL is not None
    created: list[str] = []

    def new_url() -> str:
        schema = f"ev_test_{uuid.uuid4().hex[:12]}"
        created.append(schema)
        separator = "&" if "?" in POSTGRES_URL else "?"
        return f"{POSTGRES_URL}{separator}schema={schema}&auto_migrate=true"

    def drop_all() -> None:
        import psycopg

        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            for schema in created:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    return new_url, drop_all


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EngineSpec]:
    """Each contract test runs once per engine."""
    name = request.param
    if name == "memory":
        yield EngineSpec(name, "memory://", durable=False, multiprocess=False)
    elif name == "sqlite-memory":
        yield EngineSpec(name, "sqlite:///:memory:", durable=False, multiprocess=False)
    elif name == "toy":
        yield _toy_engine()
    elif name == "sqlite-file":
        counter = iter(range(10**9))

        def new_file() -> str:
            return str(tmp_path / f"fresh-{next(counter)}.db")

        yield EngineSpec(
            name, str(tmp_path / "store.db"), durable=True, multiprocess=True, new_url=new_file
        )
    else:
        if POSTGRES_URL is None:
            if os.environ.get("EVENTVAULT_REQUIRE_POSTGRES"):
                pytest.fail(
                    "EVENTVAULT_REQUIRE_POSTGRES is set but EVENTVAULT_TEST_POSTGRES_URL is not"
                )
            pytest.skip("set EVENTVAULT_TEST_POSTGRES_URL to run the contract on PostgreSQL")
        new_url, drop_all = _postgres_schemas()
        try:
            yield EngineSpec(name, new_url(), durable=True, multiprocess=True, new_url=new_url)
        finally:
            drop_all()
