"""Read models follow removals: a rebuild after a hard delete, a truncation or a forgotten subject
brings back neither the removed events nor the erased fields, on every engine."""

from __future__ import annotations

from typing import Annotated

import msgspec

from eventvault import EventStore, NewEvent, RecordedEvent, StreamState
from eventvault.aggregates import EventRegistry
from eventvault.audit import Erased, Personal, SubjectKeys
from eventvault.projections import Projection, ProjectionRunner, ReadModel, handles, reset

from .helpers import append_activity, expected_totals, located, rows, run_to_head
from .model import Counter, Totals

TOTALS = "SELECT stream, balance, events FROM {schema}.totals ORDER BY stream"

people = EventRegistry()


@people.event("CustomerRegistered")
class CustomerRegistered(msgspec.Struct, frozen=True):
    customer_id: str
    email: Annotated[str | Erased, Personal(subject="customer_id")]


class Contacts(Projection):
    """Each customer's email, as the events say it (typed: the field is opened or erased)."""

    name = "contacts"
    registry = people
    tables = {"contacts": "CREATE TABLE {contacts} (customer TEXT PRIMARY KEY, email TEXT)"}

    @handles(CustomerRegistered)
    def registered(self, db: ReadModel, event: CustomerRegistered, recorded: RecordedEvent) -> None:
        email = None if isinstance(event.email, Erased) else event.email
        db.execute("INSERT INTO {contacts} VALUES (?, ?)", (event.customer_id, email))


def test_a_rebuild_after_a_hard_delete_and_a_truncation_does_not_bring_removed_events_back(
    store: EventStore,
) -> None:
    totals, counter = located(Totals, None)(), located(Counter, None)()
    append_activity(store, 60)
    run_to_head(store, totals, counter)
    store.delete_stream("account-1", hard=True, actor="dpo", reason="erasure request")
    store.truncate_stream("account-2", before=5, actor="ops", reason="retention")
    kept = {event.global_position for event in store.read_all()}
    for projection in (totals, counter):
        reset(store, projection, actor="test")
    run_to_head(store, totals, counter)
    rebuilt = [tuple(row) for row in rows(store, totals, TOTALS)]
    assert rebuilt == expected_totals(store)
    assert "account-1" not in [row[0] for row in rebuilt]
    assert {row[0]: row[2] for row in rebuilt}["account-2"] == 12 - 5
    applied = rows(store, counter, "SELECT global_position FROM {schema}.applied")
    assert {int(str(row[0])) for row in applied} == {
        position
        for position in kept
        if position not in {e.global_position for e in store.read_stream("$removals")}
    }


def test_a_rebuild_after_forget_reads_the_subjects_fields_as_erased(store: EventStore) -> None:
    keys = SubjectKeys(store)
    keys.append_to_stream(
        "customer-1",
        [NewEvent("CustomerRegistered", CustomerRegistered("c-1", "ada@example.com"))],
        expected_version=StreamState.NO_STREAM,
    )
    keys.append_to_stream(
        "customer-2",
        [NewEvent("CustomerRegistered", CustomerRegistered("c-2", "bo@example.com"))],
        expected_version=StreamState.NO_STREAM,
    )
    contacts = Contacts()
    runner = ProjectionRunner(store, [contacts], lease_seconds=1.0, personal_data=keys)
    assert runner.catch_up(30)
    query = "SELECT customer, email FROM {schema}.contacts ORDER BY customer"
    assert [tuple(row) for row in store.query(query)] == [
        ("c-1", "ada@example.com"),
        ("c-2", "bo@example.com"),
    ]
    keys.forget("c-1", actor="dpo", reason="erasure request 7")
    reset(store, contacts, actor="dpo")
    runner = ProjectionRunner(store, [contacts], lease_seconds=1.0, personal_data=keys)
    assert runner.catch_up(30)
    assert [tuple(row) for row in store.query(query)] == [("c-1", None), ("c-2", "bo@example.com")]
