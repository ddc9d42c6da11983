"""Fixtures of the audit ledger's tests: every engine, and an operator's keys kept apart from the
stores (a key beside a store's file is refused)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventvault import EventStore, NewEvent, StreamState
from eventvault.audit import SigningKey, generate_key
from eventvault.testing.contract import EngineSpec

from ..contract import conftest as contract

engine = contract.engine
"""The contract suite's fixture: each test that asks for `engine` runs on every engine."""


@pytest.fixture
def keys_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of keys, apart from every store's."""
    return tmp_path_factory.mktemp("keys")


@pytest.fixture
def key(keys_folder: Path) -> SigningKey:
    """The operator's signing key (its public key beside it as `audit.pem.pub`)."""
    return generate_key(str(keys_folder / "audit.pem"))


@pytest.fixture
def store(engine: EngineSpec) -> Iterator[EventStore]:
    """An empty store of the engine under test."""
    with engine.fresh() as opened:
        yield opened


def fill(store: EventStore, count: int, *, streams: int = 5, prefix: str = "account") -> None:
    """Append `count` events over `streams` streams, in appends of up to 100 events."""
    done = 0
    while done < count:
        size = min(100, count - done)
        name = f"{prefix}-{(done // 100) % streams}"
        store.append_to_stream(
            name,
            [NewEvent("Deposited", {"n": done + i, "note": "é"}) for i in range(size)],
            expected_version=StreamState.ANY,
        )
        done += size


def postgres_admin_url() -> str | None:
    """The test server's URL, when there is one."""
    return os.environ.get("EVENTVAULT_TEST_POSTGRES_URL")
