"""Validated appends, on every engine: every append path of a store that enforces its registry
is checked before anything is written."""

from __future__ import annotations

from typing import Any

import pytest

import eventvault
from eventvault import EventStore, NewEvent, StreamAppend, StreamState
from eventvault.errors import SchemaValidationError, UnregisteredSchemaError
from eventvault.schema import SchemaRegistry
from eventvault.serialization import EncodedEvent
from eventvault.store.seam import Transaction

DEPOSIT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "amount": {"type": "integer", "minimum": 1},
        "currency": {"enum": ["EUR", "USD"]},
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"sku": {"type": "string"}},
                "required": ["sku"],
            },
        },
    },
    "required": ["amount", "currency"],
    "additionalProperties": False,
}
ANY = StreamState.ANY


def deposit(amount: object, **more: object) -> NewEvent:
    return NewEvent("MoneyDeposited", {"amount": amount, "currency": "EUR", **more})


@pytest.fixture
def enforcing(store: EventStore) -> SchemaRegistry:
    registry = SchemaRegistry(store)
    registry.register("MoneyDeposited", DEPOSIT)
    registry.enforce()
    return registry


def test_a_valid_event_is_appended(store: EventStore, enforcing: SchemaRegistry) -> None:
    store.append_to_stream("account-1", [deposit(5)], expected_version=StreamState.NO_STREAM)
    assert [e.data for e in store.read_stream("account-1")] == [{"amount": 5, "currency": "EUR"}]


def test_an_invalid_event_refuses_the_whole_append_naming_its_index_path_and_reason(
    store: EventStore, enforcing: SchemaRegistry
) -> None:
    events = [deposit(5), deposit(7, lines=[{"sku": "a"}, {"sku": 3}])]
    with pytest.raises(SchemaValidationError) as caught:
        store.append_to_stream("account-1", events, expected_version=ANY)
    error = caught.value
    assert (error.index, error.stream_name, error.event_type, error.schema_version) == (
        1,
        "account-1",
        "MoneyDeposited",
        1,
    )
    assert error.errors == [("/lines/1/sku", '3 is not of type "string"')]
    assert "event 1" in str(error) and "/lines/1/sku" in str(error)
    assert store.get_stream_version("account-1") is None
    assert store.head_position() == 0


def test_every_violation_is_listed(store: EventStore, enforcing: SchemaRegistry) -> None:
    with pytest.raises(SchemaValidationError) as caught:
        store.append_to_stream(
            "account-1",
            [NewEvent("MoneyDeposited", {"amount": 0, "currency": "GBP", "extra": 1})],
            expected_version=ANY,
        )
    assert {path for path, _ in caught.value.errors} == {"", "/amount", "/currency"}


def test_an_invalid_event_refuses_a_multi_stream_append_whole(
    store: EventStore, enforcing: SchemaRegistry
) -> None:
    with pytest.raises(SchemaValidationError) as caught:
        store.append_to_streams(
            [
                StreamAppend("account-1", [deposit(5)], ANY),
                StreamAppend("account-2", [deposit(5), deposit("ten")], ANY),
            ]
        )
    assert (caught.value.stream_name, caught.value.index) == ("account-2", 1)
    assert store.head_position() == 0


def test_an_invalid_event_appended_in_a_transaction_writes_nothing_of_it(
    store: EventStore, enforcing: SchemaRegistry
) -> None:
    def work(tx: Transaction) -> None:
        tx.append_to_stream("account-1", [deposit(-3)], expected_version=ANY)

    with pytest.raises(SchemaValidationError, match="/amount"):
        store.run_transaction(work)
    assert store.head_position() == 0


def test_the_async_face_is_held_too(store: EventStore, enforcing: SchemaRegistry) -> None:
    import asyncio

    from eventvault.store.aio import AsyncEventStore

    async def append() -> None:
        await AsyncEventStore(store).append_to_stream(
            "account-1", [deposit("x")], expected_version=ANY
        )

    with pytest.raises(SchemaValidationError):
        asyncio.run(append())


def test_a_version_that_does_not_exist_is_refused(
    store: EventStore, enforcing: SchemaRegistry
) -> None:
    event = NewEvent("MoneyDeposited", {"amount": 5, "currency": "EUR"}, schema_version=2)
    with pytest.raises(UnregisteredSchemaError) as caught:
        store.append_to_stream("account-1", [deposit(5), event], expected_version=ANY)
    assert (caught.value.index, caught.value.registered) == (1, [1])
    assert "no schema version 2" in str(caught.value)
    assert store.head_position() == 0


def test_unregistered_types_are_allowed_by_default_and_refused_when_the_store_says_so(
    store: EventStore, enforcing: SchemaRegistry
) -> None:
    note = NewEvent("NoteTaken", {"anything": ["goes"]})
    store.append_to_stream("notes-1", [note], expected_version=ANY)
    assert enforcing.set_unregistered("refuse")
    with pytest.raises(UnregisteredSchemaError, match="refuses unregistered types"):
        store.append_to_stream("notes-1", [note], expected_version=ANY)
    assert store.get_stream_version("notes-1") == 0
    assert enforcing.unregistered() == "refuse"


def test_a_version_registered_after_enforcing_began_is_validated(
    store: EventStore, enforcing: SchemaRegistry
) -> None:
    later = NewEvent(
        "MoneyDeposited", {"amount": 5, "currency": "EUR", "note": "x"}, schema_version=2
    )
    with pytest.raises(UnregisteredSchemaError):
        store.append_to_stream("account-1", [later], expected_version=ANY)
    enforcing.register(
        "MoneyDeposited",
        {**DEPOSIT, "properties": {**DEPOSIT["properties"], "note": {"type": "string"}}},
    )
    store.append_to_stream("account-1", [later], expected_version=ANY)
    assert store.get_stream_version("account-1") == 0


def test_a_type_registered_by_another_store_object_is_enforced_here(tmp_path: Any) -> None:
    path = str(tmp_path / "shared.db")
    with eventvault.connect(path) as producer, eventvault.connect(path) as admin:
        SchemaRegistry(producer).enforce(refresh_seconds=0)
        producer.append_to_stream("x-1", [NewEvent("Typed", {"a": "free"})], expected_version=ANY)
        schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
        SchemaRegistry(admin).register("Typed", schema)
        with pytest.raises(SchemaValidationError):
            producer.append_to_stream("x-1", [NewEvent("Typed", {"a": "x"})], expected_version=ANY)
        producer.append_to_stream("x-1", [NewEvent("Typed", {"a": 1})], expected_version=ANY)


def test_an_allowed_unregistered_type_is_trusted_for_refresh_seconds(tmp_path: Any) -> None:
    path = str(tmp_path / "shared.db")
    with eventvault.connect(path) as producer, eventvault.connect(path) as admin:
        SchemaRegistry(producer).enforce(refresh_seconds=3600)
        producer.append_to_stream("x-1", [NewEvent("Typed", {"a": "free"})], expected_version=ANY)
        SchemaRegistry(admin).register("Typed", {"type": "object"})
        SchemaRegistry(admin).set_unregistered("refuse")
        # Within the hour the producer does not read the registry again for this type.
        producer.append_to_stream("x-1", [NewEvent("Typed", {"a": "x"})], expected_version=ANY)
        with pytest.raises(UnregisteredSchemaError):
            producer.append_to_stream("x-1", [NewEvent("Other", {})], expected_version=ANY)


def test_a_store_that_enforces_nothing_has_no_validator(store: EventStore) -> None:
    assert store.append_validator is None
    SchemaRegistry(store).register("MoneyDeposited", DEPOSIT)
    store.append_to_stream("account-1", [deposit("not checked")], expected_version=ANY)
    assert store.append_validator is None


def test_the_hook_sees_the_encoded_payload_and_can_be_removed(store: EventStore) -> None:
    seen: list[tuple[str, list[bytes]]] = []

    def validator(stream_name: str, events: Any) -> None:
        batch: list[EncodedEvent] = list(events)
        seen.append((stream_name, [event.data for event in batch]))

    store.set_append_validator(validator)
    store.append_to_stream("a-1", [NewEvent("T", {"x": 1})], expected_version=ANY)
    store.set_append_validator(None)
    store.append_to_stream("a-1", [NewEvent("T", {"x": 2})], expected_version=ANY)
    assert seen == [("a-1", [b'{"x":1}'])]
