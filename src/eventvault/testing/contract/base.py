"""What the contract suite needs from the engine it tests: an `EngineSpec` and a fixture."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from eventvault import EventStore, NewEvent, connect

__all__ = ["ContractBase", "EngineSpec", "events", "shared_storage"]


@dataclass(frozen=True, slots=True)
class EngineSpec:
    """The engine under test.

    Attributes:
        name: a label for test ids.
        url: `connect(url)` opens the store under test. For a durable engine, every call opens
            the same, initially empty, storage.
        durable: events survive `close()` and are seen by a second `connect(url)`.
        multiprocess: several processes may open `url` at once.
        new_url: returns the URL of new, empty storage on the same engine; None when every
            `connect(url)` already gives an empty store (the in-memory engines).
    """

    name: str
    url: str
    durable: bool
    multiprocess: bool
    new_url: Callable[[], str] | None = None

    def fresh(self) -> EventStore:
        """Open a store on new, empty storage of the engine under test."""
        return connect(self.url if self.new_url is None else self.new_url())

    def open(self, *, max_event_bytes: int | None = None) -> EventStore:
        """Open a store on the engine under test."""
        if max_event_bytes is None:
            return connect(self.url)
        return connect(self.url, max_event_bytes=max_event_bytes)


class ContractBase:
    """Base of every contract class: supplies `store` from the `engine` fixture.

    Apply the suite by subclassing the contract classes in a test module that defines an
    `engine` fixture returning an `EngineSpec` (see tests/contract/ in the eventvault repo).
    """

    @pytest.fixture
    def store(self, engine: EngineSpec) -> Iterator[EventStore]:
        """A store on the engine under test, closed after the test."""
        store = engine.open()
        try:
            yield store
        finally:
            store.close()


def shared_storage(engine: EngineSpec) -> None:
    """Skip the test unless several processes may open the engine's storage; create that
    storage, so that the processes the test starts next do not race to create it."""
    if not engine.multiprocess:
        pytest.skip(f"{engine.name} lives in one process")
    with engine.open():
        pass


def events(count: int, event_type: str = "Happened", **data: object) -> list[NewEvent]:
    """`count` events of one type whose data holds `data` and their index as `n`."""
    return [NewEvent(event_type, {**data, "n": n}) for n in range(count)]
