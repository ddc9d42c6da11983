"""The registry kept by the store, on every engine: registering, modes, the history, bad input
that changes nothing, and Python classes that register themselves."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

import eventvault
from eventvault import EventStore
from eventvault.aggregates import EventRegistry
from eventvault.errors import (
    IncompatibleSchemaError,
    InvalidSchemaError,
    SchemaRegistrationError,
)
from eventvault.schema import Change, Mode, SchemaRegistry, class_schema

OWNER_V1: dict[str, Any] = {
    "type": "object",
    "properties": {"owner": {"type": "string"}},
    "required": ["owner"],
    "additionalProperties": False,
}
OWNER_V2: dict[str, Any] = {
    **OWNER_V1,
    "properties": {"owner": {"type": "string"}, "currency": {"type": "string"}},
}
OWNER_AS_NUMBER: dict[str, Any] = {**OWNER_V1, "properties": {"owner": {"type": "integer"}}}


def snapshot(registry: SchemaRegistry) -> list[tuple[int, str, str | None, int | None]]:
    return [(c.change_id, c.action, c.event_type, c.version) for c in registry.history()]


def test_registering_a_schema_gives_version_one_and_records_who_and_when(store: EventStore) -> None:
    registry = SchemaRegistry(store, actor="ada@bank")
    before = datetime.now(UTC)
    result = registry.register("AccountOpened", OWNER_V1)
    assert (result.version, result.created) == (1, True)
    found = registry.get("AccountOpened")
    assert found.version == 1
    assert found.schema["properties"] == OWNER_V1["properties"]
    assert found.schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    [change] = registry.history()
    assert (change.change_id, change.action, change.changed_by) == (1, "register", "ada@bank")
    assert change.changed_at >= before.replace(microsecond=0)
    assert change.value == found.schema


def test_registering_the_same_schema_twice_is_a_no_op(store: EventStore) -> None:
    registry = SchemaRegistry(store)
    registry.register("AccountOpened", OWNER_V1)
    again = registry.register("AccountOpened", dict(reversed(list(OWNER_V1.items()))))
    assert (again.version, again.created) == (1, False)
    assert again == registry.register("AccountOpened", OWNER_V1, version=1)
    assert len(registry.history()) == 1


def test_a_compatible_schema_becomes_the_next_version(store: EventStore) -> None:
    registry = SchemaRegistry(store)
    registry.register("AccountOpened", OWNER_V1)
    assert registry.register("AccountOpened", OWNER_V2).version == 2
    assert [v.version for v in registry.versions("AccountOpened")] == [1, 2]
    assert registry.get("AccountOpened", 1).schema["properties"] == OWNER_V1["properties"]


def test_an_incompatible_schema_is_refused_with_every_breaking_change_and_nothing_written(
    store: EventStore,
) -> None:
    registry = SchemaRegistry(store)
    registry.register("AccountOpened", OWNER_V2)
    with pytest.raises(IncompatibleSchemaError) as caught:
        registry.register("AccountOpened", OWNER_AS_NUMBER)
    error = caught.value
    assert (error.event_type, error.version, error.mode) == ("AccountOpened", 2, "BACKWARD")
    assert {(c.path, c.change) for c in error.changes} == {  # type: ignore[attr-defined]
        ("#/properties/owner", Change.TYPE_CHANGED),
        ("#/properties/currency", Change.PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL),
    }
    assert "#/properties/owner" in str(error) and "#/properties/currency" in str(error)
    assert snapshot(registry) == [(1, "register", "AccountOpened", 1)]


def test_check_reports_without_writing(store: EventStore) -> None:
    registry = SchemaRegistry(store)
    registry.register("AccountOpened", OWNER_V1)
    report = registry.check("AccountOpened", OWNER_AS_NUMBER)
    assert (report.version, report.compatible, report.registered) == (2, False, False)
    assert [c.change for c in report.breaking] == [Change.TYPE_CHANGED]
    assert registry.check("AccountOpened", OWNER_V1).registered
    assert registry.check("AccountOpened", OWNER_V2).compatible
    assert len(registry.history()) == 1


def test_the_mode_governs_the_next_version_and_is_recorded(store: EventStore) -> None:
    registry = SchemaRegistry(store)
    registry.register("AccountOpened", OWNER_V1)
    assert registry.mode("AccountOpened") is Mode.BACKWARD
    assert registry.set_mode("AccountOpened", "none")
    assert not registry.set_mode("AccountOpened", Mode.NONE)
    assert registry.register("AccountOpened", OWNER_AS_NUMBER).version == 2
    assert registry.set_mode("AccountOpened", "BACKWARD_TRANSITIVE")
    number_and_currency = {
        **OWNER_AS_NUMBER,
        "properties": {"owner": {"type": "integer"}, "currency": {"type": "string"}},
    }
    with pytest.raises(IncompatibleSchemaError) as caught:
        registry.register("AccountOpened", number_and_currency)
    assert {c.version for c in caught.value.changes} == {1}  # type: ignore[attr-defined]
    assert snapshot(registry) == [
        (1, "register", "AccountOpened", 1),
        (2, "mode", "AccountOpened", None),
        (3, "register", "AccountOpened", 2),
        (4, "mode", "AccountOpened", None),
    ]
    assert registry.history("AccountOpened")[1].value == "NONE"


def test_a_mode_may_be_set_before_the_first_version(store: EventStore) -> None:
    registry = SchemaRegistry(store)
    registry.set_mode("MoneyMoved", Mode.FULL)
    registry.register("MoneyMoved", OWNER_V1)
    assert registry.mode("MoneyMoved") is Mode.FULL
    assert registry.types() == ["MoneyMoved"]


@pytest.mark.parametrize(
    ("schema", "path", "reason"),
    [
        ({"type": "string"}, "#/type", 'must say "type": "object"'),
        ({"type": "array", "items": {}}, "#/type", 'must say "type": "object"'),
        (
            {"type": "object", "properties": {"a": {"$ref": "https://example.com/a.json"}}},
            "#/properties/a/$ref",
            "points outside the document",
        ),
        ({"$ref": "other.json#/x"}, "#/$ref", "points outside the document"),
        (
            {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}},
            "#/properties/a/$ref",
            "points to nothing",
        ),
        (
            {"type": "object", "$schema": "http://json-schema.org/draft-07/schema#"},
            "#/$schema",
            "draft 2020-12",
        ),
        ({"type": "object", "minProperties": -1}, "#/minProperties", "not a valid draft"),
        ({"type": "object", "properties": {"a": {"type": "strin"}}}, "#/properties/a/type", ""),
        (
            {"type": "object", "$defs": {"a": {"$id": "https://example.com/a"}}},
            "#/$defs/a",
            "$id",
        ),
    ],
    ids=[
        "string",
        "array",
        "remote-ref",
        "file-ref",
        "dangling-ref",
        "draft-07",
        "meta-invalid",
        "bad-type",
        "nested-id",
    ],
)
def test_a_schema_the_registry_cannot_use_is_refused_naming_where_and_nothing_changes(
    store: EventStore, schema: dict[str, Any], path: str, reason: str
) -> None:
    registry = SchemaRegistry(store)
    registry.register("AccountOpened", OWNER_V1)
    with pytest.raises(InvalidSchemaError) as caught:
        registry.register("AccountOpened", schema)
    assert caught.value.path == path
    assert reason in str(caught.value)
    assert "AccountOpened" in str(caught.value)
    assert snapshot(registry) == [(1, "register", "AccountOpened", 1)]


def test_a_schema_nested_too_deep_is_refused(store: EventStore) -> None:
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(80):
        deep = {"type": "object", "properties": {"x": deep}}
    with pytest.raises(InvalidSchemaError, match="nested deeper than 64"):
        SchemaRegistry(store).register("Deep", deep)
    assert SchemaRegistry(store).history() == []


@pytest.mark.parametrize(
    ("event_type", "version", "reason"),
    [
        ("", None, "non-empty str"),
        ("x" * 201, None, "at most 200 characters"),
        ("bad\x00name", None, "control characters"),
        ("AccountOpened", 0, "from 1 to 2147483647"),
        ("AccountOpened", 2**31, "from 1 to 2147483647"),
        ("AccountOpened", 5, "does not follow the newest registered version 1"),
    ],
    ids=["empty", "too-long", "control", "zero", "too-big", "gap"],
)
def test_a_type_name_or_version_out_of_range_is_refused_and_nothing_changes(
    store: EventStore, event_type: str, version: int | None, reason: str
) -> None:
    registry = SchemaRegistry(store)
    registry.register("AccountOpened", OWNER_V1)
    with pytest.raises(SchemaRegistrationError, match=reason):
        registry.register(event_type, OWNER_V2, version=version)
    assert snapshot(registry) == [(1, "register", "AccountOpened", 1)]


def test_a_registered_version_never_changes(store: EventStore) -> None:
    registry = SchemaRegistry(store)
    registry.register("AccountOpened", OWNER_V1)
    with pytest.raises(SchemaRegistrationError, match="version 1 is registered with another"):
        registry.register("AccountOpened", OWNER_V2, version=1)
    assert registry.get("AccountOpened", 1).schema["properties"] == OWNER_V1["properties"]


def test_a_bad_mode_or_policy_is_refused(store: EventStore) -> None:
    registry = SchemaRegistry(store)
    with pytest.raises(SchemaRegistrationError, match="BACKWARD, BACKWARD_TRANSITIVE"):
        registry.set_mode("AccountOpened", "SIDEWAYS")
    with pytest.raises(SchemaRegistrationError, match="allow or refuse"):
        registry.set_unregistered("maybe")  # type: ignore[arg-type]
    assert registry.history() == []


def test_a_first_version_may_start_above_one_later_ones_follow(store: EventStore) -> None:
    registry = SchemaRegistry(store)
    assert registry.register("AccountOpened", OWNER_V1, version=3).version == 3
    assert registry.register("AccountOpened", OWNER_V2).version == 4


def test_a_second_store_object_sees_the_changes_of_the_first(tmp_path: Any) -> None:
    path = str(tmp_path / "two.db")
    with eventvault.connect(path) as first, eventvault.connect(path) as second:
        one, two = SchemaRegistry(first), SchemaRegistry(second)
        assert two.types() == []
        one.register("AccountOpened", OWNER_V1)
        assert two.get("AccountOpened").version == 1
        two.register("AccountOpened", OWNER_V2)
        assert [v.version for v in one.versions("AccountOpened")] == [1, 2]


# -- classes register themselves --------------------------------------------------------------


class Line(msgspec.Struct, frozen=True):
    sku: str
    quantity: int


class OrderPlaced(msgspec.Struct, frozen=True):
    order_id: str
    lines: list[Line]
    note: str | None = None


class OrderPlacedV2(msgspec.Struct, frozen=True):
    order_id: str
    lines: list[Line]
    note: str | None = None
    coupon: str | None = None


class OrderPlacedBroken(msgspec.Struct, frozen=True):
    order_id: int
    lines: list[Line]


def test_a_class_schema_is_a_closed_object_schema_complete_in_itself() -> None:
    schema = class_schema(OrderPlaced)
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["order_id", "lines"]
    assert schema["$defs"]["Line"]["additionalProperties"] is False
    assert schema["properties"]["lines"]["items"] == {"$ref": "#/$defs/Line"}


def test_sync_registers_every_class_and_is_a_no_op_the_second_time(store: EventStore) -> None:
    events = EventRegistry()
    events.register(OrderPlaced, name="OrderPlaced", version=1)
    events.register(Line, name="LineAdded", version=1)
    registry = SchemaRegistry(store)
    report = registry.sync(events)
    assert report.registered == [("LineAdded", 1), ("OrderPlaced", 1)]
    again = registry.sync(events)
    assert (again.registered, again.unchanged) == ([], [("LineAdded", 1), ("OrderPlaced", 1)])
    assert registry.get("OrderPlaced", 1).schema == {
        **class_schema(OrderPlaced),
        "$schema": "https://json-schema.org/draft/2020-12/schema",
    }


def test_sync_of_a_compatible_new_class_version_registers_it(store: EventStore) -> None:
    registry = SchemaRegistry(store)
    first = EventRegistry()
    first.register(OrderPlaced, name="OrderPlaced", version=1)
    registry.sync(first)
    second = EventRegistry()
    second.register(OrderPlacedV2, name="OrderPlaced", version=2)
    assert registry.sync(second).registered == [("OrderPlaced", 2)]


def test_sync_refuses_an_incompatible_class_before_writing_anything(store: EventStore) -> None:
    registry = SchemaRegistry(store)
    first = EventRegistry()
    first.register(OrderPlaced, name="OrderPlaced", version=1)
    registry.sync(first)
    second = EventRegistry()
    second.register(Line, name="LineAdded", version=1)  # fine on its own
    second.register(OrderPlacedBroken, name="OrderPlaced", version=2)
    with pytest.raises(IncompatibleSchemaError, match="#/properties/order_id"):
        registry.sync(second)
    assert snapshot(registry) == [(1, "register", "OrderPlaced", 1)]


def test_sync_refuses_a_class_whose_version_holds_another_schema(store: EventStore) -> None:
    registry = SchemaRegistry(store)
    first = EventRegistry()
    first.register(OrderPlaced, name="OrderPlaced", version=1)
    registry.sync(first)
    changed = EventRegistry()
    changed.register(OrderPlacedV2, name="OrderPlaced", version=1)
    with pytest.raises(SchemaRegistrationError, match="give the new schema version 2"):
        registry.sync(changed)
