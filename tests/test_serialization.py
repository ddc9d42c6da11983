"""Encoding, validation and the hash chain's framing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import msgspec
import pytest

from eventvault import NewEvent
from eventvault.errors import HashChainError, InvalidEventError, InvalidStreamNameError
from eventvault.serialization import (
    GENESIS_HASH,
    canonical_json_problem,
    decode_rows,
    encode_events,
    event_hash,
    from_micros,
    stored_payload,
    to_micros,
    uuid_from_bytes,
    validate_stream_name,
    verify_chain,
)
from eventvault.types import RawEvent


def _hash(**overrides: object) -> bytes:
    fields: dict[str, object] = {
        "previous": GENESIS_HASH,
        "stream_name": "s-1",
        "stream_position": 0,
        "event_id": bytes(16),
        "event_type": "A",
        "schema_version": 1,
        "recorded_at_us": 0,
        "data": b"{}",
        "metadata": b"{}",
    }
    fields.update(overrides)
    return event_hash(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "change",
    [
        {"previous": b"\x01" * 32},
        {"stream_name": "s-2"},
        {"stream_position": 1},
        {"event_id": b"\x01" + bytes(15)},
        {"event_type": "B"},
        {"schema_version": 2},
        {"recorded_at_us": 1},
        {"data": b'{"a":1}'},
        {"metadata": b'{"a":1}'},
    ],
)
def test_every_field_changes_the_hash(change: dict[str, object]) -> None:
    assert _hash(**change) != _hash()


def test_moving_bytes_between_adjacent_fields_changes_the_hash() -> None:
    assert _hash(stream_name="ab", event_type="c") != _hash(stream_name="a", event_type="bc")


def test_microsecond_timestamps_round_trip() -> None:
    moment = datetime(2026, 11, 27, 5, 6, 7, 123456, tzinfo=UTC)
    assert from_micros(to_micros(moment)) == moment


def test_fast_uuid_from_bytes_equals_the_standard_one() -> None:
    value = uuid.uuid4()
    fast = uuid_from_bytes(value.bytes)
    assert fast == value and str(fast) == str(value) and hash(fast) == hash(value)


def test_validate_stream_name_accepts_unicode_and_dashes() -> None:
    assert validate_stream_name("kundenkonto-ü-42") == "kundenkonto-ü-42"


def test_validate_stream_name_rejects_c1_control_characters() -> None:
    with pytest.raises(InvalidStreamNameError, match="control"):
        validate_stream_name("a\x85b")


def test_encoding_reports_which_event_failed() -> None:
    with pytest.raises(InvalidEventError) as caught:
        encode_events([NewEvent("A", {}), NewEvent("B", {"x": 1j})], 1000)
    assert caught.value.index == 1
    assert "event 1" in str(caught.value)


def test_verify_chain_detects_a_reordered_pair() -> None:
    first = _raw(0, GENESIS_HASH, 1)
    second = _raw(1, bytes.fromhex(first.hash), 2)
    assert verify_chain([first, second]) == 2
    swapped = [
        msgspec.structs.replace(second, global_position=1),
        msgspec.structs.replace(first, global_position=2),
    ]
    with pytest.raises(ValueError, match="position"):
        verify_chain(swapped)


def test_verify_chain_detects_a_changed_hash() -> None:
    first = _raw(0, GENESIS_HASH, 1)
    with pytest.raises(HashChainError):
        verify_chain([msgspec.structs.replace(first, hash="00" * 32)])


def test_verify_chain_names_a_gap_inside_a_stream_and_a_stream_that_starts_late() -> None:
    first = _raw(0, GENESIS_HASH, 1)
    second = _raw(1, bytes.fromhex(first.hash), 2)
    third = _raw(2, bytes.fromhex(second.hash), 3)
    with pytest.raises(ValueError, match="'s-1': position 2 where 1 was due"):
        verify_chain([first, third])
    with pytest.raises(ValueError, match="starts at position 1, not 0: this is part of a log"):
        verify_chain([second, third])


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("event_type", "", "event_type must be a non-empty str"),
        ("event_type", "T\x00", "without control characters"),
        ("event_type", "T" * 5000, "TTTT... \\(5000 characters\\)"),
        ("schema_version", 0, "schema_version must be an int from 1"),
        ("schema_version", 2**40, "not 1099511627776"),
        ("global_position", 2**63, "past the largest"),
    ],
)
def test_verify_chain_refuses_values_no_append_could_have_stored(
    field: str, value: object, message: str
) -> None:
    # Checked before the hash, so a file crafted with a matching hash is refused the same way.
    event = msgspec.structs.replace(_raw(0, GENESIS_HASH, 1), **{field: value})
    with pytest.raises(ValueError, match=message):
        verify_chain([event])


@pytest.mark.parametrize(
    "wrong",
    [[{"stream_name": "s-1"}], ["s-1"]],
    ids=["a dict", "a str"],
)
def test_verify_chain_of_something_other_than_events_says_what_to_pass(wrong: object) -> None:
    with pytest.raises(TypeError) as caught:
        verify_chain(wrong)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "a RecordedEvent (from read_stream or read_all)" in message
    assert "a RawEvent (from export_events)" in message
    assert f"not a {type(wrong[0]).__name__}" in message  # type: ignore[index]


@pytest.mark.parametrize("wrong", [None, 5, object()], ids=["None", "an int", "an object"])
def test_verify_chain_of_no_iterable_says_what_to_pass(wrong: object) -> None:
    with pytest.raises(TypeError, match=r"store\.read_stream\(name\), store\.read_all\(\)"):
        verify_chain(wrong)  # type: ignore[arg-type]


def test_verify_chain_of_one_event_asks_for_an_iterable() -> None:
    with pytest.raises(TypeError, match=r"takes an iterable of events.* not RawEvent"):
        verify_chain(_raw(0, GENESIS_HASH, 1))  # type: ignore[arg-type]


def test_a_recorded_event_verifies_as_its_raw_event() -> None:
    raw = _raw(0, GENESIS_HASH, 1)
    (recorded,) = decode_rows(
        [
            (
                raw.stream_name,
                raw.stream_position,
                raw.global_position,
                raw.event_id.bytes,
                raw.event_type,
                raw.schema_version,
                bytes(raw.data),
                bytes(raw.metadata),
                to_micros(raw.recorded_at),
                bytes.fromhex(raw.hash),
            )
        ]
    )
    assert verify_chain([recorded]) == 1
    assert stored_payload(recorded) == stored_payload(raw) == (b"{}", b"{}")


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b'{"a":1,"b":[true,null,"\xc3\xa9"]}', None),
        (
            b'{"a":1, "b":2}',
            'from byte 7 it reads b\'{"a":1, "b":2}\', canonically b\'{"a":1,"b":2}\'',
        ),
        (b"[1]", "is not a JSON object eventvault can read"),
    ],
)
def test_canonical_json_problem_shows_where_bytes_differ(raw: bytes, problem: str | None) -> None:
    found = canonical_json_problem(raw)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def _raw(position: int, previous: bytes, global_position: int) -> RawEvent:
    event_id = uuid.uuid4()
    recorded = datetime(2026, 1, 1, tzinfo=UTC)
    digest = event_hash(
        previous, "s-1", position, event_id.bytes, "A", 1, to_micros(recorded), b"{}", b"{}"
    )
    return RawEvent(
        global_position=global_position,
        stream_name="s-1",
        stream_position=position,
        event_id=event_id,
        event_type="A",
        schema_version=1,
        data=msgspec.Raw(b"{}"),
        metadata=msgspec.Raw(b"{}"),
        recorded_at=recorded,
        hash=digest.hex(),
    )


def test_decode_rows_gives_each_row_its_own_timestamp_and_shares_equal_ones() -> None:
    micros = [1_700_000_000_000_000, 1_700_000_000_000_000, 1_700_000_000_000_001, 0, 0]
    rows = [
        ("s-1", n, n + 1, uuid.uuid4().bytes, "E", 1, b'{"n":%d}' % n, b"{}", at, bytes(32))
        for n, at in enumerate(micros)
    ]
    events = decode_rows(rows)
    assert [e.recorded_at for e in events] == [
        datetime.fromtimestamp(at // 1_000_000, UTC).replace(microsecond=at % 1_000_000)
        for at in micros
    ]
    assert [e.data for e in events] == [{"n": n} for n in range(5)]
    # Rows committed together share one (immutable) datetime.
    assert events[0].recorded_at is events[1].recorded_at
    assert events[3].recorded_at is events[4].recorded_at
