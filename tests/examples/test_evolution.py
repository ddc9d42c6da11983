"""The evolution examples of docs/schema-registry.md, on every engine: old events read as the
new classes, the stored bytes and hash chains untouched, the change recorded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from evolution import change_type, optional_field, rename_field, split_event

import eventvault
from eventvault import EventStore
from eventvault.schema import SchemaRegistry
from eventvault.serialization import verify_chain


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    url = "memory://" if request.param == "memory" else str(tmp_path / "evolution.db")
    with eventvault.connect(url) as opened:
        yield opened


def untouched(store: EventStore) -> None:
    verify_chain(store.export_events())
    assert all(
        event.schema_version == 1 for event in store.read_all() if event.global_position == 1
    )


def test_add_an_optional_field(store: EventStore) -> None:
    assert optional_field.evolve(store) == [optional_field.AccountOpened("Ada", "EUR")]
    assert next(store.read_all()).data == {"owner": "Ada"}
    untouched(store)
    # Compatible: no mode change was needed.
    assert [c.action for c in SchemaRegistry(store).history()] == ["register", "register"]


def test_rename_a_field(store: EventStore) -> None:
    assert rename_field.evolve(store) == [rename_field.AccountOpened("Ada")]
    untouched(store)
    history = SchemaRegistry(store).history("AccountOpened")
    assert [(c.action, c.value if c.action == "mode" else c.version) for c in history] == [
        ("register", 1),
        ("mode", "NONE"),
        ("register", 2),
        ("mode", "BACKWARD"),
    ]
    assert {c.changed_by for c in history[1:]} == {"release-2.0"}


def test_split_an_event(store: EventStore) -> None:
    old, new = split_event.evolve(store)
    assert (old.name, old.city) == ("Ada", "London")
    assert (new.name, new.city) == ("Grace", "Arlington")
    untouched(store)


def test_change_a_type(store: EventStore) -> None:
    assert change_type.evolve(store) == [
        change_type.ItemPriced("pen", 250),
        change_type.ItemPriced("pen", 10),
    ]
    untouched(store)


def test_an_old_producer_is_refused_the_old_shape_once_it_is_gone(store: EventStore) -> None:
    """After the rename, appends naming version 2 must carry `holder`; version 1 stays
    registered, so an old producer still writes version 1, which readers upcast."""
    from eventvault import NewEvent, StreamState
    from eventvault.errors import SchemaValidationError

    rename_field.evolve(store)
    registry = SchemaRegistry(store)
    registry.enforce()
    with pytest.raises(SchemaValidationError, match="holder"):
        store.append_to_stream(
            "account-2",
            [NewEvent("AccountOpened", {"owner": "Bo"}, schema_version=2)],
            expected_version=StreamState.ANY,
        )
    store.append_to_stream(
        "account-2", [NewEvent("AccountOpened", {"owner": "Bo"})], expected_version=StreamState.ANY
    )
    assert rename_field.AFTER.decode(next(store.read_stream("account-2"))) == (
        rename_field.AccountOpened("Bo")
    )
