"""EventRegistry: explicit names and versions, encoding to NewEvent, decoding recorded events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from eventvault import EventStore, NewEvent, StreamState
from eventvault.aggregates import (
    EventDecodeError,
    EventRegistrationError,
    EventRegistry,
    UnknownEventTypeError,
    UnregisteredEventError,
)


class Opened(msgspec.Struct, frozen=True):
    owner: str


class OpenedV2(msgspec.Struct, frozen=True):
    owner: str
    currency: str = "EUR"


class Mutable(msgspec.Struct):
    owner: str


class AsArray(msgspec.Struct, frozen=True, array_like=True):
    owner: str


def test_register_stores_the_given_name_and_version() -> None:
    registry = EventRegistry()
    registry.register(Opened, name="AccountOpened", version=3)
    entry = registry.type_of(Opened)
    assert (entry.name, entry.version, entry.cls) == ("AccountOpened", 3, Opened)


def test_the_decorator_registers_and_returns_the_class_unchanged() -> None:
    registry = EventRegistry()

    @registry.event("Closed", version=2)
    class Closed(msgspec.Struct, frozen=True):
        reason: str

    assert registry.class_for("Closed", 2) is Closed
    assert Closed(reason="x").reason == "x"


def test_a_renamed_class_reads_events_written_under_the_old_class(store: EventStore) -> None:
    old = EventRegistry()
    old.register(Opened, name="AccountOpened")
    store.append_to_stream(
        "account-1", [old.to_new_event(Opened(owner="Ada"))], expected_version=StreamState.ANY
    )

    class AccountWasOpened(msgspec.Struct, frozen=True):
        owner: str

    new = EventRegistry()
    new.register(AccountWasOpened, name="AccountOpened")
    assert new.decode(next(store.read_stream("account-1"))) == AccountWasOpened(owner="Ada")


def test_one_name_may_have_a_class_per_version() -> None:
    registry = EventRegistry()
    registry.register(Opened, name="AccountOpened", version=1)
    registry.register(OpenedV2, name="AccountOpened", version=2)
    assert registry.class_for("AccountOpened", 1) is Opened
    assert registry.class_for("AccountOpened", 2) is OpenedV2


def test_registering_two_classes_under_one_name_and_version_is_an_error() -> None:
    registry = EventRegistry()
    registry.register(Opened, name="AccountOpened", version=1)
    with pytest.raises(EventRegistrationError, match="already registered to Opened"):
        registry.register(OpenedV2, name="AccountOpened", version=1)
    assert registry.class_for("AccountOpened", 1) is Opened


def test_registering_one_class_twice_is_an_error() -> None:
    registry = EventRegistry()
    registry.register(Opened, name="AccountOpened", version=1)
    with pytest.raises(EventRegistrationError, match="already registered as 'AccountOpened'"):
        registry.register(Opened, name="Other", version=1)
    assert len(registry) == 1


@pytest.mark.parametrize(
    ("cls", "reason"),
    [
        (Mutable, "must be frozen"),
        (AsArray, "not array_like"),
        (dict, "must subclass msgspec.Struct"),
    ],
)
def test_only_frozen_structs_that_encode_to_objects_can_be_registered(
    cls: Any, reason: str
) -> None:
    registry = EventRegistry()
    with pytest.raises(EventRegistrationError, match=reason):
        registry.register(cls, name="X")


@pytest.mark.parametrize("name", ["", "a\nb", "x" * 201, 5, "half\udc00pair"])
def test_a_bad_name_is_refused(name: Any) -> None:
    with pytest.raises(EventRegistrationError, match="the name must be"):
        EventRegistry().register(Opened, name=name)


@pytest.mark.parametrize("version", [0, -1, 1.5, "1", True])
def test_a_bad_version_is_refused(version: Any) -> None:
    with pytest.raises(EventRegistrationError, match="the version must be an int >= 1"):
        EventRegistry().register(Opened, name="AccountOpened", version=version)


def test_registration_errors_are_type_errors() -> None:
    with pytest.raises(TypeError):
        EventRegistry().register(Mutable, name="X")


def test_to_new_event_carries_name_version_the_struct_metadata_and_id() -> None:
    registry = EventRegistry()
    registry.register(OpenedV2, name="AccountOpened", version=2)
    event_id = uuid.uuid4()
    event = OpenedV2(owner="Ada")
    new_event = registry.to_new_event(event, metadata={"actor": "bob"}, event_id=event_id)
    assert new_event == NewEvent(
        "AccountOpened", event, metadata={"actor": "bob"}, event_id=event_id, schema_version=2
    )


def test_to_new_event_of_an_unregistered_class_raises() -> None:
    with pytest.raises(UnregisteredEventError, match="Opened is not registered"):
        EventRegistry().to_new_event(Opened(owner="Ada"))


def test_an_event_round_trips_through_a_store_to_its_registered_class(store: EventStore) -> None:
    registry = EventRegistry()
    registry.register(OpenedV2, name="AccountOpened", version=2)
    event = OpenedV2(owner="Ada", currency="GBP")
    store.append_to_stream(
        "account-1", [registry.to_new_event(event)], expected_version=StreamState.NO_STREAM
    )
    recorded = next(store.read_stream("account-1"))
    assert (recorded.event_type, recorded.schema_version) == ("AccountOpened", 2)
    assert registry.decode(recorded) == event


def test_decoding_picks_the_class_by_name_and_version(store: EventStore) -> None:
    registry = EventRegistry()
    registry.register(Opened, name="AccountOpened", version=1)
    registry.register(OpenedV2, name="AccountOpened", version=2)
    store.append_to_stream(
        "account-1",
        [NewEvent("AccountOpened", {"owner": "Ada"}, schema_version=1)],
        expected_version=StreamState.ANY,
    )
    assert type(registry.decode(next(store.read_stream("account-1")))) is Opened


def test_decoding_an_unregistered_type_raises_naming_type_version_and_position(
    store: EventStore,
) -> None:
    store.append_to_stream(
        "account-1",
        [NewEvent("AccountOpened", {"owner": "Ada"}, schema_version=7)],
        expected_version=StreamState.ANY,
    )
    recorded = next(store.read_stream("account-1"))
    with pytest.raises(UnknownEventTypeError, match=r"'account-1'@0.*'AccountOpened' version 7"):
        EventRegistry().decode(recorded)


def test_decoding_an_unregistered_type_can_return_the_recorded_event(store: EventStore) -> None:
    store.append_to_stream(
        "account-1", [NewEvent("Unknown", {"a": 1})], expected_version=StreamState.ANY
    )
    recorded = next(store.read_stream("account-1"))
    assert EventRegistry().decode(recorded, unknown="raw") is recorded


def test_decoding_a_payload_that_does_not_fit_the_class_raises_an_error_naming_the_event(
    store: EventStore,
) -> None:
    registry = EventRegistry()
    registry.register(Opened, name="AccountOpened")
    store.append_to_stream(
        "account-1",
        [NewEvent("AccountOpened", {"owner": "Ada"}), NewEvent("AccountOpened", {"owner": 5})],
        expected_version=StreamState.ANY,
    )
    with pytest.raises(EventDecodeError) as raised:
        list(registry.decode_all(store.read_stream("account-1")))
    error = raised.value
    assert isinstance(error, ValueError)
    assert (error.stream_name, error.stream_position) == ("account-1", 1)
    assert (error.event_type, error.schema_version, error.event_class) == (
        "AccountOpened",
        1,
        Opened,
    )
    assert "Expected `str`, got `int` - at `$.owner`" in error.reason
    assert str(error).startswith(
        "'account-1'@1: event type 'AccountOpened' version 1 does not decode as Opened: "
        "Expected `str`"
    )
    assert isinstance(error.__cause__, msgspec.ValidationError)


def test_iterating_a_registry_lists_every_registration() -> None:
    registry = EventRegistry()
    registry.register(Opened, name="A")
    registry.register(OpenedV2, name="B", version=2)
    assert {(e.name, e.version) for e in registry} == {("A", 1), ("B", 2)}
    assert Opened in registry
    assert Mutable not in registry


class Rich(msgspec.Struct, frozen=True):
    at: datetime
    ref: uuid.UUID
    amount: Decimal
    blob: bytes
    by_id: dict[int, str]
    pair: tuple[int, int]
    labels: frozenset[str]


RICH = Rich(
    at=datetime(2024, 5, 1, 12, 30, 0, 123456, tzinfo=UTC),
    ref=uuid.UUID(int=7),
    amount=Decimal("10.10"),
    blob=b"\x00\xff",
    by_id={1: "one", 2: "two"},
    pair=(1, 2),
    labels=frozenset({"a", "b"}),
)


def test_fields_without_a_json_type_decode_back_to_their_python_types(store: EventStore) -> None:
    registry = EventRegistry()
    registry.register(Rich, name="Rich")
    store.append_to_stream(
        "rich-1", [registry.to_new_event(RICH)], expected_version=StreamState.ANY
    )
    assert registry.decode(next(store.read_stream("rich-1"))) == RICH


class Nested(msgspec.Struct, frozen=True):
    items: list[dict[str, Rich]]


def test_the_registry_notes_which_classes_have_non_str_mapping_keys() -> None:
    registry = EventRegistry()
    registry.register(Opened, name="Opened")
    registry.register(Rich, name="Rich")
    registry.register(Nested, name="Nested")
    assert not registry.type_of(Opened).str_keys
    assert registry.type_of(Rich).str_keys
    assert registry.type_of(Nested).str_keys
