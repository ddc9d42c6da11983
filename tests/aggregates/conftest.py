"""Stores for the aggregate tests: every test that asks for `store` runs on memory and SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import eventvault
from eventvault import EventStore


@pytest.fixture(params=["memory", "sqlite-file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    """An empty store of each engine the domain layer supports snapshots for."""
    url = "memory://" if request.param == "memory" else str(tmp_path / "store.db")
    with eventvault.connect(url) as opened:
        yield opened


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[EventStore]:
    """An empty SQLite file store."""
    with eventvault.connect(str(tmp_path / "store.db")) as opened:
        yield opened
