"""plan_batch, the append decision every engine calls: what a batch of requests comes to.

The engines' contract tests reach plan_batch through whole stores, one commit at a time; these
tests give it batches of several requests, as a group commit does, and check what it keeps
from one request for the next: the heads the rows leave, and the event ids they store.
"""

from __future__ import annotations

import uuid

import pytest

from eventvault import NewEvent, StreamState
from eventvault.errors import DuplicateEventIdError, WrongExpectedVersionError
from eventvault.serialization import DEFAULT_MAX_EVENT_BYTES, GENESIS_HASH
from eventvault.store._append import PendingAppend, StreamHead, plan_batch, prepare
from eventvault.types import AppendResult, ExpectedVersion

NOW = 1_700_000_000_000_000


def _append(
    stream: str, count: int, expected: ExpectedVersion, ids: list[uuid.UUID] | None = None
) -> PendingAppend:
    events = [
        NewEvent("Deposited", {"n": n}, event_id=None if ids is None else ids[n])
        for n in range(count)
    ]
    return prepare(stream, events, expected, DEFAULT_MAX_EVENT_BYTES)


def test_rows_of_a_batch_take_consecutive_global_positions_in_request_order() -> None:
    plan = plan_batch(
        [[_append("a", 2, StreamState.NO_STREAM)], [_append("b", 3, StreamState.NO_STREAM)]],
        {},
        {},
        10,
        NOW,
    )
    assert [(row.stream_name, row.stream_position, row.global_position) for row in plan.rows] == [
        ("a", 0, 10),
        ("a", 1, 11),
        ("b", 0, 12),
        ("b", 1, 13),
        ("b", 2, 14),
    ]
    assert plan.outcomes == [[AppendResult(1, 11)], [AppendResult(2, 14)]]


def test_heads_hold_the_last_row_of_each_stream_after_every_request() -> None:
    plan = plan_batch(
        [
            [_append("a", 2, StreamState.NO_STREAM), _append("b", 1, 4)],
            [_append("a", 3, 1)],
        ],
        {"b": (4, GENESIS_HASH)},
        {},
        1,
        NOW,
    )
    last_a, last_b = plan.rows[-1], plan.rows[2]
    assert plan.heads == {
        "a": StreamHead(4, 6, last_a.hash),
        "b": StreamHead(5, 3, last_b.hash),
    }
    assert (last_a.stream_name, last_b.stream_name) == ("a", "b")


def test_a_failed_request_leaves_no_rows_and_no_heads_and_the_next_one_goes_on() -> None:
    plan = plan_batch(
        [
            [_append("a", 1, StreamState.NO_STREAM), _append("b", 1, 7)],
            [_append("c", 1, StreamState.NO_STREAM)],
        ],
        {},
        {},
        1,
        NOW,
    )
    assert isinstance(plan.outcomes[0], WrongExpectedVersionError)
    assert plan.outcomes[1] == [AppendResult(0, 1)]
    assert [row.stream_name for row in plan.rows] == ["c"]
    assert set(plan.heads) == {"c"}
    assert plan.failed


def test_a_request_repeating_an_earlier_one_of_the_batch_is_its_retry() -> None:
    ids = [uuid.uuid4(), uuid.uuid4()]
    plan = plan_batch(
        [
            [_append("a", 2, StreamState.NO_STREAM, ids)],
            [_append("a", 2, StreamState.NO_STREAM, ids)],
        ],
        {},
        {},
        1,
        NOW,
    )
    assert plan.outcomes == [[AppendResult(1, 2)], [AppendResult(1, 2)]]
    assert len(plan.rows) == 2
    assert not plan.failed


def test_an_id_stored_by_an_earlier_request_of_the_batch_is_refused_elsewhere() -> None:
    ids = [uuid.uuid4()]
    plan = plan_batch(
        [
            [_append("a", 1, StreamState.NO_STREAM, ids)],
            [_append("b", 1, StreamState.NO_STREAM, ids)],
        ],
        {},
        {},
        1,
        NOW,
    )
    assert plan.outcomes[0] == [AppendResult(0, 1)]
    error = plan.outcomes[1]
    assert isinstance(error, DuplicateEventIdError)
    assert "'a'" in str(error)
    assert [row.stream_name for row in plan.rows] == ["a"]


def test_an_id_of_a_failed_request_is_not_taken_as_stored() -> None:
    ids = [uuid.uuid4()]
    plan = plan_batch(
        [
            [_append("a", 1, StreamState.NO_STREAM, ids), _append("b", 1, 3)],
            [_append("c", 1, StreamState.NO_STREAM, ids)],
        ],
        {},
        {},
        1,
        NOW,
    )
    assert isinstance(plan.outcomes[0], WrongExpectedVersionError)
    assert plan.outcomes[1] == [AppendResult(0, 1)]


@pytest.mark.parametrize("given", [False, True])
def test_ids_already_stored_are_found_whether_or_not_the_batch_gives_others(given: bool) -> None:
    stored = uuid.uuid4()
    other = [uuid.uuid4()] if given else None
    plan = plan_batch(
        [
            [_append("x", 1, StreamState.NO_STREAM, other)],
            [_append("a", 1, 0, [stored])],
        ],
        {"a": (0, GENESIS_HASH)},
        {stored: ("a", 1, 42)},
        100,
        NOW,
    )
    assert plan.outcomes == [[AppendResult(0, 100)], [AppendResult(1, 42)]]
    assert [row.stream_name for row in plan.rows] == ["x"]
