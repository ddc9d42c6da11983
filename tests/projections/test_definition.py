"""Projection classes: what a definition must hold, and the SQL of read models."""

from __future__ import annotations

import msgspec
import pytest

import eventvault
from eventvault import RecordedEvent
from eventvault.aggregates import EventRegistry
from eventvault.errors import ProjectionDefinitionError
from eventvault.projections import Projection, ProjectionRunner, ReadModel, Sink, handles
from eventvault.projections.sql import render
from eventvault.store.seam import Dialect

from .model import Counter, Deposited, Totals, registry


def test_handlers_are_collected_under_their_event_type_names() -> None:
    assert set(Totals.handlers) == {"Deposited", "Withdrawn"}
    assert Totals.handlers["Deposited"].event_class is Deposited
    assert Counter.handlers["Deposited"].event_class is None
    assert Totals().event_types == ("Deposited", "Withdrawn")


def test_a_subclass_keeps_its_parents_handlers_and_may_replace_one() -> None:
    class Louder(Totals):
        version = 2

        @handles(Deposited)
        def deposited(self, db: ReadModel, event: Deposited, recorded: RecordedEvent) -> None:
            raise AssertionError("not called here")

    assert Louder.handlers["Deposited"].method is Louder.deposited
    assert Louder.handlers["Withdrawn"] is Totals.handlers["Withdrawn"]


def test_a_handler_of_a_class_the_registry_does_not_know_is_refused() -> None:
    class Unknown(msgspec.Struct, frozen=True):
        n: int

    with pytest.raises(ProjectionDefinitionError, match="not registered in the class's registry"):

        class Broken(Projection):
            name = "broken"
            registry = registry

            @handles(Unknown)
            def unknown(self, db: ReadModel, event: Unknown, recorded: RecordedEvent) -> None:
                pass


def test_a_typed_handler_needs_a_registry() -> None:
    with pytest.raises(ProjectionDefinitionError, match="set registry"):

        class Broken(Projection):
            name = "broken"

            @handles(Deposited)
            def deposited(self, db: ReadModel, event: Deposited, recorded: RecordedEvent) -> None:
                pass


def test_two_handlers_of_one_event_type_are_refused() -> None:
    with pytest.raises(ProjectionDefinitionError, match="first and second both handle 'Deposited'"):

        class Broken(Sink):
            name = "broken"
            registry = registry

            @handles("Deposited")
            def first(self, recorded: RecordedEvent) -> None:
                pass

            @handles(Deposited)
            def second(self, event: Deposited, recorded: RecordedEvent) -> None:
                pass


@pytest.mark.parametrize(
    ("attribute", "value", "message"),
    [
        ("name", "has space", "name must be"),
        ("name", "", "name must be"),
        ("version", 0, "version must be an int >= 1"),
        ("version", "2", "version must be an int >= 1"),
        ("batch_size", 0, "batch_size must be an int from 1 to 10000"),
        ("categories", "account", "categories must be a tuple"),
        ("categories", ("account-1",), "categories must be a tuple"),
        ("tables", {"Bad Name": "CREATE TABLE {x} ()"}, "lower-case identifier"),
        ("tables", {"t": "CREATE TABLE t (a INT)"}, r"names it as \{t\}"),
        ("tables", {"t": []}, "no CREATE TABLE"),
    ],
)
def test_bad_attributes_are_refused_when_the_class_is_made(
    attribute: str, value: object, message: str
) -> None:
    with pytest.raises(ProjectionDefinitionError, match=message):
        type("Broken", (Projection,), {attribute: value})


def test_handles_refuses_what_is_neither_an_event_class_nor_a_name() -> None:
    with pytest.raises(TypeError, match="event class"):
        handles(int)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="non-empty"):
        handles("")


def test_a_runner_refuses_classes_duplicates_nameless_and_handlerless_projections() -> None:
    class Nameless(Projection):
        @handles("Deposited")
        def deposited(self, db: ReadModel, recorded: RecordedEvent) -> None:
            pass

    class Idle(Projection):
        name = "idle"

    class SameTable(Projection):
        name = "same-table"
        tables = {"totals": "CREATE TABLE {totals} (a INT)"}

        @handles("Deposited")
        def deposited(self, db: ReadModel, recorded: RecordedEvent) -> None:
            pass

    with eventvault.connect("memory://") as store:
        cases: list[tuple[list[object], str]] = [
            ([Totals], "instances"),
            ([Nameless()], "declare name"),
            ([Idle()], "handles no event"),
            ([Totals(), Totals()], "two projections are named 'totals'"),
            ([Totals(), SameTable()], "table 'totals' is also 'totals'"),
        ]
        for projections, message in cases:
            with pytest.raises(ProjectionDefinitionError, match=message):
                ProjectionRunner(store, projections)  # type: ignore[arg-type]


def test_statements_name_tables_in_braces_and_use_question_marks_on_both_dialects() -> None:
    tables = {"totals": "totals_v3"}
    statement = "UPDATE {totals} SET note = 'why? 100%' WHERE a = ? AND b LIKE '%x'"
    assert render(statement, "sqlite", tables) == (
        "UPDATE totals_v3 SET note = 'why? 100%' WHERE a = ? AND b LIKE '%x'"
    )
    assert render(statement, "postgresql", tables) == (
        "UPDATE totals_v3 SET note = 'why? 100%%' WHERE a = %s AND b LIKE '%%x'"
    )
    assert render("SELECT {schema}.x", "postgresql", tables) == "SELECT {schema}.x"


def test_a_statement_may_differ_per_dialect_and_must_name_declared_tables() -> None:
    statement: dict[Dialect, str] = {
        "sqlite": "SELECT 1 FROM {totals}",
        "postgresql": "SELECT 2 FROM {totals}",
    }
    assert render(statement, "postgresql", {"totals": "t"}) == "SELECT 2 FROM t"
    with pytest.raises(ProjectionDefinitionError, match=r"\{other\}, which is not declared"):
        render("SELECT * FROM {other}", "sqlite", {"totals": "t"})
    with pytest.raises(ProjectionDefinitionError, match="no postgresql text"):
        render({"sqlite": "SELECT 1"}, "postgresql", {})


def test_several_categories_are_filtered_as_events_arrive() -> None:
    class Two(Sink):
        name = "two"
        categories = ("account", "order")

        @handles("Deposited")
        def deposited(self, recorded: RecordedEvent) -> None:
            pass

    two = Two()
    assert two.stream_prefix is None
    assert [two.wants(s) for s in ("account-1", "order-2", "audit-1", "account")] == [
        True,
        True,
        False,
        False,
    ]
    assert Totals().stream_prefix == "account-"


def test_an_event_of_an_unregistered_version_stops_a_typed_projection_at_it() -> None:
    with eventvault.connect("memory://") as store:
        store.append_to_stream(
            "account-1",
            [eventvault.NewEvent("Deposited", {"amount": 1}, schema_version=2)],
            expected_version=eventvault.StreamState.ANY,
        )
        totals = Totals()
        assert ProjectionRunner(store, [totals]).catch_up(10)
        [status] = eventvault.projections.projection_status(store, [totals])
        assert status.last_error is not None and "UnknownEventTypeError" in status.last_error


def test_registry_is_a_plain_attribute() -> None:
    other = EventRegistry()
    assert Totals.registry is registry and other is not registry
