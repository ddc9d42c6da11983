"""Contract: appends, expected versions, atomicity and bad input."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from eventvault import (
    EventStore,
    NewEvent,
    StreamAppend,
    StreamState,
    WrongExpectedVersionError,
)
from eventvault.errors import (
    InvalidArgumentError,
    InvalidEventError,
    InvalidExpectedVersionError,
    InvalidStreamNameError,
    PayloadTooLargeError,
)
from eventvault.testing.contract.base import ContractBase, EngineSpec, events

__all__ = ["AppendContract", "BadInputContract"]


class _Point(msgspec.Struct, frozen=True):
    x: int
    y: int


class _Pair(msgspec.Struct, frozen=True, array_like=True):
    a: int
    b: int


class AppendContract(ContractBase):
    """Appends and optimistic concurrency (guarantees 2 and 3)."""

    def test_append_to_new_stream_returns_first_positions(self, store: EventStore) -> None:
        result = store.append_to_stream(
            "order-1", events(1), expected_version=StreamState.NO_STREAM
        )
        assert (result.stream_position, result.global_position) == (0, 1)

    def test_append_of_several_events_stores_them_at_consecutive_positions(
        self, store: EventStore
    ) -> None:
        result = store.append_to_stream("order-1", events(3), expected_version=StreamState.ANY)
        recorded = list(store.read_stream("order-1"))
        assert [e.stream_position for e in recorded] == [0, 1, 2]
        assert [e.data["n"] for e in recorded] == [0, 1, 2]
        assert result.stream_position == 2
        assert result.global_position == recorded[-1].global_position

    def test_global_positions_increase_across_streams(self, store: EventStore) -> None:
        store.append_to_stream("a-1", events(2), expected_version=StreamState.ANY)
        store.append_to_stream("b-1", events(1), expected_version=StreamState.ANY)
        store.append_to_stream("a-1", events(1), expected_version=StreamState.ANY)
        positions = [e.global_position for e in store.read_all()]
        assert positions == sorted(positions)
        assert len(set(positions)) == 4

    def test_append_with_exact_expected_version_extends_the_stream(self, store: EventStore) -> None:
        store.append_to_stream("order-1", events(3), expected_version=StreamState.NO_STREAM)
        result = store.append_to_stream("order-1", events(1), expected_version=2)
        assert result.stream_position == 3

    def test_append_with_wrong_expected_version_raises_and_writes_nothing(
        self, store: EventStore
    ) -> None:
        store.append_to_stream("order-1", events(3), expected_version=StreamState.NO_STREAM)
        with pytest.raises(WrongExpectedVersionError) as caught:
            store.append_to_stream("order-1", events(1), expected_version=1)
        assert caught.value.stream_name == "order-1"
        assert caught.value.expected == 1
        assert caught.value.actual == 2
        assert "order-1" in str(caught.value)
        assert store.get_stream_version("order-1") == 2
        assert len(list(store.read_all())) == 3

    def test_no_stream_on_existing_stream_raises(self, store: EventStore) -> None:
        store.append_to_stream("order-1", events(1), expected_version=StreamState.NO_STREAM)
        with pytest.raises(WrongExpectedVersionError) as caught:
            store.append_to_stream("order-1", events(1), expected_version=StreamState.NO_STREAM)
        assert caught.value.expected is StreamState.NO_STREAM
        assert caught.value.actual == 0

    def test_stream_exists_on_missing_stream_raises_with_actual_none(
        self, store: EventStore
    ) -> None:
        with pytest.raises(WrongExpectedVersionError) as caught:
            store.append_to_stream("order-1", events(1), expected_version=StreamState.STREAM_EXISTS)
        assert caught.value.actual is None
        assert store.get_stream_version("order-1") is None

    def test_stream_exists_on_existing_stream_appends(self, store: EventStore) -> None:
        store.append_to_stream("order-1", events(1), expected_version=StreamState.NO_STREAM)
        result = store.append_to_stream(
            "order-1", events(1), expected_version=StreamState.STREAM_EXISTS
        )
        assert result.stream_position == 1

    def test_exact_version_on_missing_stream_raises(self, store: EventStore) -> None:
        with pytest.raises(WrongExpectedVersionError) as caught:
            store.append_to_stream("order-1", events(1), expected_version=0)
        assert caught.value.actual is None

    def test_any_appends_whatever_the_version(self, store: EventStore) -> None:
        store.append_to_stream("order-1", events(1), expected_version=StreamState.ANY)
        result = store.append_to_stream("order-1", events(1), expected_version=StreamState.ANY)
        assert result.stream_position == 1

    def test_append_to_streams_writes_every_stream(self, store: EventStore) -> None:
        store.append_to_stream("account-2", events(1), expected_version=StreamState.NO_STREAM)
        results = store.append_to_streams(
            [
                StreamAppend("account-1", events(2), StreamState.NO_STREAM),
                StreamAppend("account-2", events(1), 0),
            ]
        )
        assert [r.stream_position for r in results] == [1, 1]
        assert results[0].global_position < results[1].global_position
        assert store.get_stream_version("account-1") == 1
        assert store.get_stream_version("account-2") == 1

    def test_append_to_streams_with_one_conflict_writes_nothing(self, store: EventStore) -> None:
        store.append_to_stream("account-2", events(2), expected_version=StreamState.NO_STREAM)
        with pytest.raises(WrongExpectedVersionError) as caught:
            store.append_to_streams(
                [
                    StreamAppend("account-1", events(1), StreamState.NO_STREAM),
                    StreamAppend("account-2", events(1), 0),
                ]
            )
        assert caught.value.stream_name == "account-2"
        assert store.get_stream_version("account-1") is None
        assert len(list(store.read_all())) == 2

    def test_append_to_streams_naming_a_stream_twice_raises(self, store: EventStore) -> None:
        with pytest.raises(InvalidEventError):
            store.append_to_streams(
                [
                    StreamAppend("account-1", events(1), StreamState.ANY),
                    StreamAppend("account-1", events(1), StreamState.ANY),
                ]
            )
        assert store.head_position() == 0

    def test_append_whose_third_event_cannot_be_encoded_stores_nothing(
        self, store: EventStore
    ) -> None:
        batch = [
            *events(2),
            NewEvent("Broken", {"value": object()}),
            *events(1),
        ]
        with pytest.raises(InvalidEventError) as caught:
            store.append_to_stream("order-1", batch, expected_version=StreamState.ANY)
        assert caught.value.index == 2
        assert list(store.read_stream("order-1")) == []
        assert store.head_position() == 0

    def test_data_and_metadata_round_trip(self, store: EventStore) -> None:
        data: dict[str, object] = {
            "text": 'Grüße, 世界 \u2028 "quoted"',
            "int": 2**62,
            "negative": -7,
            "float": 0.1,
            "bool": True,
            "none": None,
            "list": [1, "two", {"three": 3.5}],
            "nested": {"deep": {"deeper": []}},
        }
        metadata = {"correlation_id": "c-1", "actor": "ada"}
        store.append_to_stream(
            "order-1",
            [NewEvent("Placed", data, metadata=metadata, schema_version=3)],
            expected_version=StreamState.ANY,
        )
        (event,) = store.read_stream("order-1")
        assert event.data == data
        assert event.metadata == metadata
        assert event.event_type == "Placed"
        assert event.schema_version == 3
        assert event.category == "order"

    def test_metadata_defaults_to_an_empty_object(self, store: EventStore) -> None:
        store.append_to_stream("order-1", events(1), expected_version=StreamState.ANY)
        (event,) = store.read_stream("order-1")
        assert event.metadata == {}

    def test_event_id_given_is_kept_and_one_is_generated_otherwise(self, store: EventStore) -> None:
        given = uuid.uuid4()
        store.append_to_stream(
            "order-1",
            [NewEvent("A", {}, event_id=given), NewEvent("B", {})],
            expected_version=StreamState.ANY,
        )
        first, second = store.read_stream("order-1")
        assert first.event_id == given
        assert isinstance(second.event_id, uuid.UUID)
        assert second.event_id != given

    def test_recorded_at_is_utc_and_set_by_the_store(self, store: EventStore) -> None:
        before = datetime.now(UTC)
        store.append_to_stream("order-1", events(1), expected_version=StreamState.ANY)
        after = datetime.now(UTC)
        (event,) = store.read_stream("order-1")
        assert event.recorded_at.tzinfo is not None
        assert event.recorded_at.utcoffset() == UTC.utcoffset(None)
        assert before.replace(microsecond=0) <= event.recorded_at <= after

    def test_mutating_the_payload_after_appending_does_not_change_the_stored_event(
        self, store: EventStore
    ) -> None:
        data: dict[str, object] = {"items": [1, 2]}
        store.append_to_stream("order-1", [NewEvent("A", data)], expected_version=StreamState.ANY)
        data["items"] = "changed"
        (event,) = store.read_stream("order-1")
        assert event.data == {"items": [1, 2]}

    def test_a_struct_payload_is_stored_as_a_json_object(self, store: EventStore) -> None:
        store.append_to_stream(
            "shape-1", [NewEvent("Moved", _Point(1, 2))], expected_version=StreamState.ANY
        )
        (event,) = store.read_stream("shape-1")
        assert event.data == {"x": 1, "y": 2}


class BadInputContract(ContractBase):
    """Bad input gets a clear error and writes nothing."""

    @pytest.mark.parametrize(
        "name",
        ["", "x" * 201, "line\nbreak", "nul\x00", "tab\tname", "del\x7f", "half\ud800pair"],
        ids=["empty", "too-long", "newline", "nul", "tab", "del", "lone-surrogate"],
    )
    def test_invalid_stream_name_raises_and_writes_nothing(
        self, store: EventStore, name: str
    ) -> None:
        with pytest.raises(InvalidStreamNameError):
            store.append_to_stream(name, events(1), expected_version=StreamState.ANY)
        assert store.head_position() == 0

    def test_stream_name_that_is_not_a_str_raises(self, store: EventStore) -> None:
        with pytest.raises(InvalidStreamNameError):
            store.append_to_stream(42, events(1), expected_version=StreamState.ANY)  # type: ignore[arg-type]

    def test_stream_name_of_200_characters_is_accepted(self, store: EventStore) -> None:
        name = "s" * 200
        store.append_to_stream(name, events(1), expected_version=StreamState.ANY)
        assert store.get_stream_version(name) == 0

    @pytest.mark.parametrize(
        "data",
        [[1, 2], "text", None, 3, b"{}"],
        ids=["list", "str", "none", "int", "bytes"],
    )
    def test_data_that_is_not_a_json_object_raises(self, store: EventStore, data: Any) -> None:
        with pytest.raises(InvalidEventError, match="data"):
            store.append_to_stream(
                "order-1", [NewEvent("A", data)], expected_version=StreamState.ANY
            )
        assert store.head_position() == 0

    @pytest.mark.parametrize(
        "value", [float("nan"), float("inf"), -float("inf")], ids=["nan", "inf", "-inf"]
    )
    def test_a_payload_holding_nan_or_infinity_raises_naming_where(
        self, store: EventStore, value: float
    ) -> None:
        # JSON cannot hold them; writing null instead would change the payload silently.
        with pytest.raises(InvalidEventError, match=r"data\['readings'\]\[1\] is NaN or inf"):
            store.append_to_stream(
                "sensor-1",
                [NewEvent("Measured", {"readings": [1.5, value]})],
                expected_version=StreamState.ANY,
            )
        with pytest.raises(InvalidEventError, match=r"metadata\['score'\] is NaN or inf"):
            store.append_to_stream(
                "sensor-1",
                [NewEvent("Measured", {}, metadata={"score": value})],
                expected_version=StreamState.ANY,
            )
        assert store.head_position() == 0

    def test_struct_that_encodes_to_an_array_raises(self, store: EventStore) -> None:
        with pytest.raises(InvalidEventError, match="JSON object"):
            store.append_to_stream(
                "order-1", [NewEvent("A", _Pair(1, 2))], expected_version=StreamState.ANY
            )

    def test_metadata_that_is_not_a_json_object_raises(self, store: EventStore) -> None:
        with pytest.raises(InvalidEventError, match="metadata"):
            store.append_to_stream(
                "order-1",
                [NewEvent("A", {}, metadata=["not", "an", "object"])],  # type: ignore[arg-type]
                expected_version=StreamState.ANY,
            )

    @pytest.mark.parametrize(
        "event_type",
        ["", "bad\ntype", "t" * 201, 7, "half\ud800pair"],
        ids=["empty", "newline", "long", "int", "lone-surrogate"],
    )
    def test_invalid_event_type_raises(self, store: EventStore, event_type: Any) -> None:
        with pytest.raises(InvalidEventError, match="event_type"):
            store.append_to_stream(
                "order-1", [NewEvent(event_type, {})], expected_version=StreamState.ANY
            )

    @pytest.mark.parametrize("version", [0, -1, "1", 1.0, True, 2**31, 2**40])
    def test_invalid_schema_version_raises(self, store: EventStore, version: object) -> None:
        with pytest.raises(InvalidEventError, match="schema_version"):
            store.append_to_stream(
                "order-1",
                [NewEvent("A", {}, schema_version=version)],  # type: ignore[arg-type]
                expected_version=StreamState.ANY,
            )

    def test_event_id_that_is_not_a_uuid_raises(self, store: EventStore) -> None:
        with pytest.raises(InvalidEventError, match="event_id"):
            store.append_to_stream(
                "order-1",
                [NewEvent("A", {}, event_id=str(uuid.uuid4()))],  # type: ignore[arg-type]
                expected_version=StreamState.ANY,
            )

    @pytest.mark.parametrize(
        "expected",
        ["2", 2.0, True, -1, None, "any"],
        ids=["str", "float", "bool", "neg", "none", "word"],
    )
    def test_expected_version_of_the_wrong_type_raises(
        self, store: EventStore, expected: object
    ) -> None:
        with pytest.raises(InvalidExpectedVersionError):
            store.append_to_stream("order-1", events(1), expected_version=expected)  # type: ignore[arg-type]
        assert store.head_position() == 0

    def test_an_empty_append_raises(self, store: EventStore) -> None:
        with pytest.raises(InvalidEventError, match="at least one"):
            store.append_to_stream("order-1", [], expected_version=StreamState.ANY)

    def test_events_that_are_not_new_events_raise(self, store: EventStore) -> None:
        not_events: Any = [{"type": "A"}]
        with pytest.raises(InvalidEventError, match="NewEvent"):
            store.append_to_stream("order-1", not_events, expected_version=StreamState.ANY)

    def test_a_single_new_event_instead_of_a_list_raises(self, store: EventStore) -> None:
        single: Any = NewEvent("A", {})
        with pytest.raises(InvalidEventError, match="list"):
            store.append_to_stream("order-1", single, expected_version=StreamState.ANY)

    def test_payload_over_the_default_limit_raises_and_writes_nothing(
        self, store: EventStore
    ) -> None:
        big = {"blob": "x" * (1024 * 1024)}
        with pytest.raises(PayloadTooLargeError) as caught:
            store.append_to_stream(
                "order-1", [NewEvent("A", big)], expected_version=StreamState.ANY
            )
        assert caught.value.limit == 1024 * 1024
        assert caught.value.size > caught.value.limit
        assert store.head_position() == 0

    def test_payload_limit_is_configurable(self, engine: EngineSpec) -> None:
        with engine.open(max_event_bytes=100) as small:
            small.append_to_stream(
                "order-1", [NewEvent("A", {"x": "y" * 50})], expected_version=StreamState.ANY
            )
            with pytest.raises(PayloadTooLargeError):
                small.append_to_stream(
                    "order-1", [NewEvent("A", {"x": "y" * 100})], expected_version=StreamState.ANY
                )
            assert small.get_stream_version("order-1") == 0

    @pytest.mark.parametrize("limit", [0, -1, "1000", 1.5], ids=["zero", "neg", "str", "float"])
    def test_a_bad_payload_limit_is_an_argument_error_naming_it(
        self, engine: EngineSpec, limit: object
    ) -> None:
        with pytest.raises(InvalidArgumentError) as caught:
            engine.open(max_event_bytes=limit)  # type: ignore[arg-type]
        assert caught.value.argument == "max_event_bytes"
        assert "max_event_bytes must be an int >= 1" in str(caught.value)
