"""Helpers of the projection tests: placing a read model, reading it, running to the head."""

from __future__ import annotations

from typing import TypeVar

from eventvault import EventStore, NewEvent, StreamAppend, StreamState
from eventvault.projections import Projection, ProjectionBase, ProjectionRunner
from eventvault.store.database import SQLDatabase, connect_database
from eventvault.store.seam import SQLRow

from .model import Counter, Totals, deposit, withdraw

P = TypeVar("P", bound=Projection)


def located(cls: type[P], url: str | None) -> type[P]:
    """The projection class with its read model in the database at `url` (None: the store)."""
    return type(cls.__name__, (cls,), {"database": url})


def rows(store: EventStore, projection: ProjectionBase, statement: str) -> list[SQLRow]:
    """Rows of a projection's read model, where it lives."""
    url = getattr(projection, "database", None)
    if url is None:
        return store.query(statement)
    with connect_database(url) as db:
        return db.query(statement)


def database_of(store: EventStore, projection: ProjectionBase) -> SQLDatabase:
    url = getattr(projection, "database", None)
    return store if url is None else connect_database(url)


def append_activity(store: EventStore, count: int, *, start: int = 0, accounts: int = 5) -> None:
    """Append `count` events to `account-0..accounts-1`: deposits, every third a withdrawal,
    and an event of another category now and then (which Totals does not follow)."""
    for n in range(start, start + count):
        event = withdraw(n % 7) if n % 3 == 2 else deposit(n % 11 + 1)
        stream = f"account-{n % accounts}" if n % 10 else f"audit-{n % accounts}"
        store.append_to_stream(stream, [event], expected_version=StreamState.ANY)


def expected_totals(store: EventStore) -> list[tuple[str, int, int]]:
    """The totals a correct read model holds, computed from the log directly."""
    totals: dict[str, list[int]] = {}
    for event in store.read_all():
        if not event.stream_name.startswith("account-"):
            continue
        amount = int(str(event.data["amount"]))
        signed = -amount if event.event_type == "Withdrawn" else amount
        entry = totals.setdefault(event.stream_name, [0, 0])
        entry[0] += signed
        entry[1] += 1
    return sorted((stream, balance, count) for stream, (balance, count) in totals.items())


def run_to_head(store: EventStore, *projections: ProjectionBase, timeout: float = 30) -> None:
    """Run the projections until they have applied the whole log, then stop."""
    runner = ProjectionRunner(store, projections, lease_seconds=1.0)
    assert runner.catch_up(timeout), "the projections did not catch up in time"


def append_burst(store: EventStore, count: int, *, start: int = 0) -> None:
    """`append_activity`'s events, fast: up to 100 events per atomic multi-stream append."""
    for chunk in range(start, start + count, 100):
        streams: dict[str, list[NewEvent]] = {}
        for n in range(chunk, min(chunk + 100, start + count)):
            event = withdraw(n % 7) if n % 3 == 2 else deposit(n % 11 + 1)
            stream = f"account-{n % 5}" if n % 10 else f"audit-{n % 5}"
            streams.setdefault(stream, []).append(event)
        store.append_to_streams(
            [StreamAppend(name, events, StreamState.ANY) for name, events in streams.items()]
        )


def assert_exactly_once(store: EventStore, url: str | None) -> None:
    """The read models equal what the log says, and the counter applied every event once."""
    totals = located(Totals, url)()
    counter = located(Counter, url)()
    assert [tuple(r) for r in rows(store, totals, TOTALS)] == expected_totals(store)
    counted = rows(store, counter, "SELECT global_position, times FROM {schema}.applied")
    # Every event once: the positions of the log (PostgreSQL's may have gaps), each counted 1.
    logged = [event.global_position for event in store.read_all()]
    assert sorted((int(p), int(t)) for p, t in counted) == [(p, 1) for p in logged]


TOTALS = "SELECT stream, balance, events FROM {schema}.totals ORDER BY stream"
