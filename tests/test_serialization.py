"""Encoding, validation and the hash chain's framing."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import sys
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec
import pytest

from eventvault import NewEvent
from eventvault._nesting import depth_over_limit, object_depth
from eventvault.errors import (
    CorruptEventError,
    HashChainError,
    InvalidEventError,
    InvalidStreamNameError,
    PayloadTooDeepError,
)
from eventvault.serialization import (
    GENESIS_HASH,
    MAX_NESTING_DEPTH,
    canonical_json_problem,
    decode_rows,
    encode_events,
    event_hash,
    from_micros,
    nesting_depth,
    new_event_id,
    stored_payload,
    to_micros,
    uuid_from_bytes,
    validate_stream_name,
    verify_chain,
)
from eventvault.testing.contract.nesting import nested
from eventvault.types import RawEvent
from tests.store.forking import in_forked_child


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
    with pytest.raises(CorruptEventError) as caught:
        verify_chain([first, third])
    assert (caught.value.stream_name, caught.value.stream_position) == ("s-1", 2)
    assert caught.value.global_position == 3
    assert str(caught.value) == (
        f"event {third.event_id} at 's-1'@2 (global position 3): position 2 where 1 was due"
    )
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
    with pytest.raises(CorruptEventError, match=message) as caught:
        verify_chain([event])
    # Also a ValueError, as before, and it names the event.
    assert isinstance(caught.value, ValueError)
    assert caught.value.event_id == event.event_id
    assert f"event {event.event_id} at 's-1'@0" in str(caught.value)


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


def _row(
    data: bytes, metadata: bytes = b"{}"
) -> tuple[str, int, int, bytes, str, int, bytes, bytes, int, bytes]:
    return ("s-1", 4, 9, uuid.uuid4().bytes, "E", 1, data, metadata, 0, bytes(32))


@pytest.mark.parametrize("stored", [b'{"a":}', b"[1]", b'{"a":"\xff"}', b""])
def test_a_read_of_undecodable_stored_bytes_names_the_stream_and_position(stored: bytes) -> None:
    with pytest.raises(CorruptEventError) as caught:
        decode_rows([_row(b"{}"), _row(stored)])
    error = caught.value
    assert (error.stream_name, error.stream_position, error.global_position) == ("s-1", 4, 9)
    assert str(error).startswith("'s-1'@4 (global position 9): the stored data or metadata")
    assert isinstance(error, ValueError)


def _reference_depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((_reference_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_reference_depth(v) for v in value), default=0)
    return 0


def _random_value(rng: random.Random, depth: int) -> object:
    # Strings full of what a scanner could mistake for structure.
    pieces = ["[", "]", "{", "}", '"', "\\", "a", " ", "\n", "\u2028", '\\"', "é"]
    roll = rng.random()
    if depth > 12 or roll < 0.3:
        return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))
    if roll < 0.4:
        return rng.choice([1, -2.5, None, True])
    if roll < 0.7:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {
        "".join(rng.choice(pieces) for _ in range(rng.randint(0, 3))): _random_value(rng, depth + 1)
        for _ in range(rng.randint(0, 3))
    }


def test_nesting_depth_agrees_with_a_recursive_count_whatever_the_strings_hold() -> None:
    rng = random.Random(8)
    for _ in range(3000):
        value = {"k": _random_value(rng, 0)}
        expected = _reference_depth(value)
        texts = (
            msgspec.json.encode(value),
            json.dumps(value).encode(),
            json.dumps(value, ensure_ascii=False, indent=1).encode(),
        )
        for text in texts:
            assert nesting_depth(text) == expected, text
        assert object_depth(value) == expected


@pytest.mark.parametrize("depth", [1, 2, MAX_NESTING_DEPTH, MAX_NESTING_DEPTH + 1, 995, 10_000])
def test_depth_over_limit_names_the_depth_only_past_the_limit(depth: int) -> None:
    text = b'{"a":' + b"[" * (depth - 1) + b"1" + b"]" * (depth - 1) + b"}"
    assert nesting_depth(text) == depth
    assert depth_over_limit(text) == (depth if depth > MAX_NESTING_DEPTH else None)


def test_brackets_inside_strings_are_not_nesting() -> None:
    text = msgspec.json.encode({"text": "[{" * 10_000, "list": [{"a": "]}" * 50}] * 100})
    assert depth_over_limit(text) is None
    assert nesting_depth(text) == 3


@dataclasses.dataclass
class _Node:
    child: object


def test_a_dataclass_chain_too_deep_to_encode_is_refused_with_its_depth() -> None:
    value: object = 1
    for _ in range(5000):
        value = _Node(value)
    with pytest.raises(PayloadTooDeepError) as caught:
        encode_events([NewEvent("A", {"chain": value})], 10**9)
    assert caught.value.depth == 5001


def test_a_nan_deep_inside_a_dataclass_is_found_without_recursion() -> None:
    value: object = float("nan")
    for _ in range(MAX_NESTING_DEPTH - 2):
        value = _Node(value)
    with pytest.raises(InvalidEventError, match=r"data\['chain'\]\['child'\]"):
        encode_events([NewEvent("A", {"chain": value})], 10**9)


def _near_the_recursion_limit(call: Callable[[], object], headroom: int = 25) -> object:
    def descend(frames: int) -> object:
        return call() if frames <= 0 else descend(frames - 1)

    depth = 0
    frame = sys._getframe()
    while frame is not None:
        depth += 1
        frame = frame.f_back  # type: ignore[assignment]
    return descend(sys.getrecursionlimit() - depth - headroom)


def test_decoding_and_encoding_the_deepest_payload_works_near_the_recursion_limit() -> None:
    data = nested(MAX_NESTING_DEPTH)
    text = msgspec.json.encode(data)
    decoded = _near_the_recursion_limit(lambda: decode_rows([_row(text, text)]))
    assert [(e.data, e.metadata) for e in decoded] == [(data, data)]  # type: ignore[attr-defined]
    encoded = _near_the_recursion_limit(lambda: encode_events([NewEvent("A", data)], 10**6))
    assert encoded[0].data == text  # type: ignore[index]


def test_a_stored_event_nested_too_deep_for_any_stack_is_named_not_a_recursion_error() -> None:
    # Only an event stored before appends refused deep payloads can be this deep.
    depth = sys.getrecursionlimit() + 10
    text = b'{"a":' * depth + b"1" + b"}" * depth
    with pytest.raises(CorruptEventError, match=f"nests objects and arrays {depth} levels deep"):
        decode_rows([_row(b"{}"), _row(text)])


def test_decoding_runs_on_the_calling_thread_when_the_stack_allows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import eventvault.serialization as serialization

    def no_thread(*_: object) -> object:
        raise AssertionError("decoded on another thread")

    monkeypatch.setattr(serialization, "on_fresh_stack", no_thread)
    data = nested(MAX_NESTING_DEPTH)
    (event,) = decode_rows([_row(msgspec.json.encode(data))])
    assert event.data == data


def test_event_ids_made_by_many_threads_at_once_are_all_distinct_version_7() -> None:
    made: list[list[uuid.UUID]] = []

    def make() -> None:
        made.append([new_event_id() for _ in range(5_000)])

    threads = [threading.Thread(target=make) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [event_id for batch in made for event_id in batch]
    assert len(ids) == 40_000
    assert len(set(ids)) == len(ids)
    assert {event_id.version for event_id in ids} == {7}
    assert {event_id.variant for event_id in ids} == {uuid.RFC_4122}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() here")
def test_a_forked_child_does_not_make_the_random_bits_its_parent_makes_next() -> None:
    new_event_id()  # the parent has random words in hand

    def ids() -> str:
        return " ".join(new_event_id().hex for _ in range(16))

    child = in_forked_child(ids).split()
    parent = ids().split()
    # The random bits are the last 16 hex digits of each id (less the variant's two bits).
    child_bits = {event_id[16:] for event_id in child}
    assert len(child_bits) == 16
    assert not child_bits & {event_id[16:] for event_id in parent}


def test_microseconds_before_the_epoch_and_at_the_bounds_of_datetime_round_trip() -> None:
    for moment in (
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime.min.replace(tzinfo=UTC),
        datetime.max.replace(tzinfo=UTC),
    ):
        assert from_micros(to_micros(moment)) == moment
