"""Contract: no event can make the log unreadable.

Appends and imports refuse payloads nested beyond `MAX_NESTING_DEPTH`, with an error that names
the depth, however deep the payload; reads decode everything appends accept, also on a thread
with the smallest stack Python allows and from deep in a call stack.
"""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import msgspec
import pytest

from eventvault import EventStore, NewEvent, RawEvent, StreamState
from eventvault.errors import ImportFileError, InvalidEventError, PayloadTooDeepError
from eventvault.serialization import (
    GENESIS_HASH,
    MAX_NESTING_DEPTH,
    event_hash,
    nesting_depth,
    to_micros,
)
from eventvault.testing.contract.base import ContractBase, events

__all__ = ["NestingContract", "nested"]

_T = TypeVar("_T")

SMALLEST_STACK = 32 * 1024
"""The smallest thread stack `threading.stack_size` allows."""


def nested(depth: int, leaf: object = 1) -> dict[str, object]:
    """A payload whose objects and arrays nest `depth` levels deep, its own object included.

    Args:
        depth: the levels, at least 1; objects and arrays alternate below the top.
        leaf: the innermost value.

    Returns:
        The payload.
    """
    value: object = leaf
    for level in range(depth - 1):
        value = [value] if level % 2 else {"k": value}
    return {"top": value}


def _frames() -> int:
    """How many Python frames are on this thread's stack."""
    count = 0
    frame = sys._getframe()
    while frame is not None:
        count += 1
        frame = frame.f_back  # type: ignore[assignment]
    return count


def _with_headroom(headroom: int, call: Callable[[], _T]) -> _T:
    """Call `call` with only about `headroom` frames left below the recursion limit."""

    def descend(frames: int) -> _T:
        return call() if frames <= 0 else descend(frames - 1)

    return descend(sys.getrecursionlimit() - _frames() - headroom)


def _on_small_stack(call: Callable[[], _T]) -> _T:
    """Run `call` on a new thread with the smallest stack Python allows."""
    results: list[_T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(call())
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    previous = threading.stack_size(SMALLEST_STACK)
    try:
        thread = threading.Thread(target=run)
        thread.start()
    finally:
        # Only this thread gets the small stack, not those the engine starts later.
        threading.stack_size(previous)
    thread.join(60)
    if errors:
        raise errors[0]
    assert results, "the read on a small stack did not finish"
    return results[0]


def _raw_event(data: bytes, *, stream_name: str = "deep-1") -> RawEvent:
    """The first event of a stream as an export holds it, with its hash computed."""
    event_id = uuid.uuid4()
    recorded_at = datetime(2026, 1, 1, tzinfo=UTC)
    digest = event_hash(
        GENESIS_HASH,
        stream_name,
        0,
        event_id.bytes,
        "Nested",
        1,
        to_micros(recorded_at),
        data,
        b"{}",
    )
    return RawEvent(
        global_position=1,
        stream_name=stream_name,
        stream_position=0,
        event_id=event_id,
        event_type="Nested",
        schema_version=1,
        data=msgspec.Raw(data),
        metadata=msgspec.Raw(b"{}"),
        recorded_at=recorded_at,
        hash=digest.hex(),
    )


class NestingContract(ContractBase):
    """No event can make the log unreadable: appends and imports refuse payloads nested beyond
    `MAX_NESTING_DEPTH`, and reads decode everything appends accept, anywhere."""

    def test_the_limit_is_as_deep_as_the_helper_nests(self) -> None:
        assert nesting_depth(msgspec.json.encode(nested(MAX_NESTING_DEPTH))) == MAX_NESTING_DEPTH

    def test_data_and_metadata_nested_to_the_limit_are_stored_and_read_back(
        self, store: EventStore
    ) -> None:
        data = nested(MAX_NESTING_DEPTH, leaf="bottom")
        metadata = nested(MAX_NESTING_DEPTH, leaf=0.5)
        store.append_to_stream(
            "deep-1",
            [NewEvent("Nested", data, metadata=metadata)],
            expected_version=StreamState.NO_STREAM,
        )
        (event,) = store.read_stream("deep-1")
        assert (event.data, event.metadata) == (data, metadata)
        (logged,) = store.read_all()
        assert (logged.data, logged.metadata) == (data, metadata)
        with store.subscribe_to_all() as subscription:
            (delivered,) = subscription.next_batch(timeout=10)
        assert delivered.data == data
        (payload,) = store.read_stream_payloads("deep-1")
        assert msgspec.json.decode(payload.data) == data

    @pytest.mark.parametrize("field", ["data", "metadata"])
    def test_one_level_over_the_limit_is_refused_naming_the_limit_and_the_depth(
        self, store: EventStore, field: str
    ) -> None:
        payload = nested(MAX_NESTING_DEPTH + 1)
        event = (
            NewEvent("Nested", payload) if field == "data" else NewEvent("A", {}, metadata=payload)
        )
        with pytest.raises(PayloadTooDeepError) as caught:
            store.append_to_stream("deep-1", [*events(1), event], expected_version=StreamState.ANY)
        error = caught.value
        assert (error.field, error.depth, error.limit, error.index) == (
            field,
            MAX_NESTING_DEPTH + 1,
            MAX_NESTING_DEPTH,
            1,
        )
        assert f"{field} nests objects and arrays {MAX_NESTING_DEPTH + 1} levels deep" in str(error)
        assert f"limit of {MAX_NESTING_DEPTH} levels" in str(error)
        assert isinstance(error, InvalidEventError)
        assert store.head_position() == 0

    @pytest.mark.parametrize("depth", [996, 10_000])
    @pytest.mark.parametrize("field", ["data", "metadata"])
    def test_payloads_far_too_deep_to_encode_get_the_same_clear_error(
        self, store: EventStore, depth: int, field: str
    ) -> None:
        payload = nested(depth)
        event = (
            NewEvent("Nested", payload) if field == "data" else NewEvent("A", {}, metadata=payload)
        )
        with pytest.raises(PayloadTooDeepError) as caught:
            store.append_to_stream("deep-1", [event], expected_version=StreamState.ANY)
        assert (caught.value.field, caught.value.depth) == (field, depth)
        assert f"{depth} levels deep, over the limit of {MAX_NESTING_DEPTH}" in str(caught.value)
        assert store.head_position() == 0
        assert list(store.read_all()) == []

    def test_a_deep_payload_holding_nan_gets_the_nesting_error_not_a_recursion_error(
        self, store: EventStore
    ) -> None:
        with pytest.raises(PayloadTooDeepError):
            store.append_to_stream(
                "deep-1",
                [NewEvent("Nested", nested(5000, leaf=float("nan")))],
                expected_version=StreamState.ANY,
            )
        with pytest.raises(InvalidEventError, match="is NaN or infinite"):
            store.append_to_stream(
                "deep-1",
                [NewEvent("Nested", nested(MAX_NESTING_DEPTH, leaf=float("nan")))],
                expected_version=StreamState.ANY,
            )
        assert store.head_position() == 0

    def test_reads_decode_the_deepest_payload_on_a_thread_with_the_smallest_stack(
        self, store: EventStore
    ) -> None:
        data = nested(MAX_NESTING_DEPTH)
        store.append_to_stream(
            "deep-1", [NewEvent("Nested", data, metadata=data)], expected_version=StreamState.ANY
        )

        def read() -> list[dict[str, object]]:
            with store.subscribe_to_stream("deep-1") as subscription:
                delivered = subscription.next_batch(timeout=10)
            return [
                *(e.data for e in store.read_stream("deep-1")),
                *(e.metadata for e in store.read_all(backwards=True)),
                *(e.data for e in delivered),
            ]

        assert _on_small_stack(read) == [data, data, data]

    def test_reads_decode_the_deepest_payload_from_deep_in_a_call_stack(
        self, store: EventStore
    ) -> None:
        store.append_to_stream("flat-1", events(1), expected_version=StreamState.ANY)
        data = nested(MAX_NESTING_DEPTH)
        store.append_to_stream(
            "deep-1", [NewEvent("Nested", data)], expected_version=StreamState.ANY
        )

        def read_flat() -> object:
            return list(store.read_stream("flat-1"))

        # The fewest frames a read of a flat event needs on this engine...
        headroom = 10
        while True:
            try:
                _with_headroom(headroom, read_flat)
                break
            except RecursionError:
                headroom += 5
        # ...and a few more: far fewer than the decoder recursing MAX_NESTING_DEPTH levels needs.
        (event,) = _with_headroom(headroom + 12, lambda: list(store.read_stream("deep-1")))
        assert event.data == data

    def test_import_refuses_an_event_nested_beyond_the_limit_and_stores_nothing(
        self, store: EventStore
    ) -> None:
        deep = _raw_event(msgspec.json.encode(nested(MAX_NESTING_DEPTH + 1)))
        with pytest.raises(ImportFileError) as caught:
            store.import_events([deep])
        assert (
            f"'deep-1'@0: data nests objects and arrays {MAX_NESTING_DEPTH + 1} levels deep, over "
            f"the limit of {MAX_NESTING_DEPTH} levels"
        ) in str(caught.value)
        assert store.head_position() == 0

    def test_import_refuses_data_that_reads_could_not_decode(self, store: EventStore) -> None:
        for broken in (b'{"a":}', b'{"a":1} trailing', b'{"a":"\xff"}'):
            with pytest.raises(ImportFileError, match="not a JSON object eventvault can read"):
                store.import_events([_raw_event(broken)])
        assert store.head_position() == 0

    def test_import_takes_an_event_nested_to_the_limit(self, store: EventStore) -> None:
        data = nested(MAX_NESTING_DEPTH)
        assert store.import_events([_raw_event(msgspec.json.encode(data))]) == 1
        (event,) = store.read_stream("deep-1")
        assert event.data == data
