"""What the contract suite needs from the engine it tests: an `EngineSpec` and a fixture."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import pytest

from eventvault import EventStore, NewEvent, connect
from eventvault.serialization import DEFAULT_MAX_EVENT_BYTES

__all__ = ["ContractBase", "EngineSpec", "StoreFactory", "events", "shared_storage"]


class StoreFactory(Protocol):
    """Opens a store of the engine under test."""

    def __call__(self, location: str, *, max_event_bytes: int) -> EventStore:
        """Open the store at `location` (an `EngineSpec`'s `url`, or one `new_url` made).

        Args:
            location: which storage to open, in whatever form the factory understands.
            max_event_bytes: the store's limit on one event's encoded data plus metadata.

        Returns:
            The open store; the suite closes it.
        """
        ...


def _connect(location: str, *, max_event_bytes: int) -> EventStore:
    return connect(location, max_event_bytes=max_event_bytes)


@dataclass(frozen=True, slots=True)
class EngineSpec:
    """The engine under test, and how the suite opens its stores.

    Attributes:
        name: a label for test ids.
        url: the storage under test: what `factory` opens. For a durable engine, every open
            gives the same, initially empty, storage. With `multiprocess`, also what
            `connect(url)` opens in another process.
        durable: events survive `close()` and are seen by a store opened again on `url`.
        multiprocess: several processes may open `url` at once (some tests start processes
            that `connect(url)`).
        new_url: returns the location of new, empty storage on the same engine; None when every
            open of `url` already gives an empty store (the in-memory engines).
        factory: opens a store from a location; `connect` by default. An engine that is not
            (or not only) reached through a URL, such as a third-party class or a client of a
            server started by the test, gives its own.
    """

    name: str
    url: str
    durable: bool
    multiprocess: bool
    new_url: Callable[[], str] | None = None
    factory: StoreFactory = _connect

    def fresh(self) -> EventStore:
        """Open a store on new, empty storage of the engine under test."""
        location = self.url if self.new_url is None else self.new_url()
        return self.factory(location, max_event_bytes=DEFAULT_MAX_EVENT_BYTES)

    def open(self, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> EventStore:
        """Open a store on the engine under test."""
        return self.factory(self.url, max_event_bytes=max_event_bytes)


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
