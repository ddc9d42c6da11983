"""Fixtures of the command-line tests: a runner, a store file, and a store with a few events."""

from __future__ import annotations

from pathlib import Path

import pytest

from .cli_harness import SAMPLE, Cli, seed


@pytest.fixture
def cli() -> Cli:
    """The command line, run in-process."""
    return Cli()


@pytest.fixture
def db(tmp_path: Path) -> str:
    """The path of a SQLite store file that does not exist yet."""
    return str(tmp_path / "events.db")


@pytest.fixture
def seeded(db: str) -> str:
    """A SQLite store file holding the `SAMPLE` events."""
    seed(db, SAMPLE)
    return db
