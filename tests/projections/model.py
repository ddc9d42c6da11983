"""Projections the tests run: totals per stream, a counter of every application, a picky one."""

from __future__ import annotations

import threading

import msgspec

from eventvault import NewEvent, RecordedEvent
from eventvault.aggregates import EventRegistry
from eventvault.projections import Projection, ReadModel, Sink, handles

registry = EventRegistry()


@registry.event("Deposited")
class Deposited(msgspec.Struct, frozen=True):
    amount: int


@registry.event("Withdrawn")
class Withdrawn(msgspec.Struct, frozen=True):
    amount: int


def deposit(amount: int) -> NewEvent:
    return registry.to_new_event(Deposited(amount))


def withdraw(amount: int) -> NewEvent:
    return registry.to_new_event(Withdrawn(amount))


class Totals(Projection):
    """The balance and the number of events of every account."""

    name = "totals"
    registry = registry
    categories = ("account",)
    batch_size = 50
    tables = {
        "totals": (
            "CREATE TABLE {totals} (stream TEXT PRIMARY KEY, balance BIGINT NOT NULL, "
            "events BIGINT NOT NULL)",
            "CREATE INDEX {totals}_balance ON {totals} (balance)",
        )
    }

    def _add(self, db: ReadModel, stream: str, amount: int) -> None:
        db.execute(
            "INSERT INTO {totals} (stream, balance, events) VALUES (?, ?, 1) "
            "ON CONFLICT (stream) DO UPDATE SET balance = {totals}.balance + excluded.balance, "
            "events = {totals}.events + 1",
            (stream, amount),
        )

    @handles(Deposited)
    def deposited(self, db: ReadModel, event: Deposited, recorded: RecordedEvent) -> None:
        self._add(db, recorded.stream_name, event.amount)

    @handles(Withdrawn)
    def withdrawn(self, db: ReadModel, event: Withdrawn, recorded: RecordedEvent) -> None:
        self._add(db, recorded.stream_name, -event.amount)


class Counter(Projection):
    """One row per event applied, counting how often: exactly once means every count is 1."""

    name = "counter"
    batch_size = 20
    tables = {
        "applied": "CREATE TABLE {applied} (global_position BIGINT PRIMARY KEY, "
        "times BIGINT NOT NULL)"
    }

    def _count(self, db: ReadModel, recorded: RecordedEvent) -> None:
        db.execute(
            "INSERT INTO {applied} VALUES (?, 1) ON CONFLICT (global_position) "
            "DO UPDATE SET times = {applied}.times + 1",
            (recorded.global_position,),
        )

    @handles("Deposited")
    def deposited(self, db: ReadModel, recorded: RecordedEvent) -> None:
        self._count(db, recorded)

    @handles("Withdrawn")
    def withdrawn(self, db: ReadModel, recorded: RecordedEvent) -> None:
        self._count(db, recorded)


class Picky(Projection):
    """Refuses a deposit of 13 (a defect to fix), and records the others."""

    name = "picky"
    registry = registry
    batch_size = 10
    tables = {"seen": "CREATE TABLE {seen} (global_position BIGINT PRIMARY KEY, amount BIGINT)"}
    refuse = 13

    @handles(Deposited)
    def deposited(self, db: ReadModel, event: Deposited, recorded: RecordedEvent) -> None:
        if event.amount == self.refuse:
            raise ValueError(f"unlucky amount {event.amount}")
        db.execute("INSERT INTO {seen} VALUES (?, ?)", (recorded.global_position, event.amount))


class Collector(Sink):
    """Hands every deposit to a list, at least once."""

    name = "collector"
    registry = registry
    batch_size = 7

    def __init__(self) -> None:
        self.received: list[tuple[int, int]] = []
        self.lock = threading.Lock()
        self.fail_at: int | None = None

    @handles(Deposited)
    def deposited(self, event: Deposited, recorded: RecordedEvent) -> None:
        if recorded.global_position == self.fail_at:
            raise RuntimeError("the queue is down")
        with self.lock:
            self.received.append((recorded.global_position, event.amount))


class Ledger(Projection):
    """Queues its writes: a row per deposit (amounts are unique: a repeated one fails), and at
    each withdrawal the number of deposits seen so far, read in the same transaction."""

    name = "ledger"
    registry = registry
    batch_size = 50
    tables = {
        "ledger": "CREATE TABLE {ledger} (amount BIGINT PRIMARY KEY, position BIGINT NOT NULL)",
        "counts": "CREATE TABLE {counts} (position BIGINT PRIMARY KEY, deposits BIGINT NOT NULL)",
    }

    @handles(Deposited)
    def deposited(self, db: ReadModel, event: Deposited, recorded: RecordedEvent) -> None:
        db.queue("INSERT INTO {ledger} VALUES (?, ?)", (event.amount, recorded.global_position))

    @handles(Withdrawn)
    def withdrawn(self, db: ReadModel, event: Withdrawn, recorded: RecordedEvent) -> None:
        [(deposits,)] = db.fetch("SELECT count(*) FROM {ledger}")
        db.queue("INSERT INTO {counts} VALUES (?, ?)", (recorded.global_position, deposits))
