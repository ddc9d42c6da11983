"""PostgreSQL stopped at once (`pg_ctl stop -m immediate`) while threads append, then started
again (crash recovery).

Each writer thread appends to a stream of its own with exact expected versions and event ids of
its own, and does what a careful client does when an append raises: sends the same events with the
same expected version again until one copy returns. What must hold: every append that returned is
stored where it said; an append that raised was stored once or not at all, and its copy sent again
reports it stored exactly once; stream positions stay gapless, the global order and the hash chain
hold, for the store that lived through the stop and for one opened afterwards.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Final

import pytest

from eventvault import AppendResult, EventStore, NewEvent, StreamState, connect
from eventvault.errors import StorageError
from eventvault.serialization import verify_chain
from tests.postgres.conftest import with_options
from tests.postgres.own_cluster import OwnCluster, own_cluster

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

_ = own_cluster
"""The fixture, used by name."""

WRITERS: Final = 4
DOWN: Final = 2.0
"""Seconds the server stays down."""
APPENDS_AROUND: Final = 15
"""Appends each writer gets acknowledged before the stop, and again after the start."""
DEADLINE: Final = 120.0


@dataclass
class Sent:
    """One append as a client sent it, and sent it again after errors, until it returned."""

    stream: str
    ids: list[uuid.UUID]
    expected: int | StreamState
    sent_at: float = field(default_factory=time.monotonic)
    result: AppendResult | None = None
    returned_at: float = 0.0
    errors: list[StorageError] = field(default_factory=list)

    @property
    def events(self) -> list[NewEvent]:
        return [NewEvent("Written", {"i": i}, event_id=id_) for i, id_ in enumerate(self.ids)]


@dataclass
class Writer:
    """A thread appending to one stream; what it sent, and what ended it if not the stop."""

    number: int
    sent: list[Sent] = field(default_factory=list)
    failure: BaseException | None = None

    @property
    def stream(self) -> str:
        return f"crash-{self.number}"

    def acknowledged(self) -> int:
        return sum(1 for s in self.sent if s.result is not None)

    def run(self, store: EventStore, stop: threading.Event) -> None:
        try:
            version: int | None = None
            while not stop.is_set():
                sent = Sent(
                    self.stream,
                    [uuid.uuid4() for _ in range(len(self.sent) % 3 + 1)],
                    StreamState.NO_STREAM if version is None else version,
                )
                self.sent.append(sent)
                while sent.result is None:
                    try:
                        sent.result = store.append_to_stream(
                            sent.stream, sent.events, expected_version=sent.expected
                        )
                        sent.returned_at = time.monotonic()
                    except StorageError as exc:
                        sent.errors.append(exc)
                        if stop.is_set():
                            return
                        time.sleep(0.05)
                version = sent.result.stream_position
        except BaseException as exc:
            self.failure = exc


def _wait_for(condition: str, writers: list[Writer], at_least: list[int]) -> None:
    deadline = time.monotonic() + DEADLINE
    while any(w.acknowledged() < n for w, n in zip(writers, at_least, strict=True)):
        assert all(w.failure is None for w in writers), [w.failure for w in writers]
        assert time.monotonic() < deadline, f"writers stalled {condition}"
        time.sleep(0.02)


def _assert_stored_exactly_once(store: EventStore, writers: list[Writer]) -> None:
    log = list(store.export_events())
    assert [e.global_position for e in log] == sorted({e.global_position for e in log})
    assert verify_chain(log) == len(log)
    ids = Counter(e.event_id for e in log)
    for writer in writers:
        done = [s for s in writer.sent if s.result is not None]
        stream = list(store.read_stream(writer.stream))
        assert [e.stream_position for e in stream] == list(range(len(stream)))
        assert [e.event_id for e in stream] == [id_ for s in done for id_ in s.ids]
        position = 0
        for sent in done:
            assert sent.result is not None
            position += len(sent.ids)
            assert sent.result.stream_position == position - 1
            assert sent.result.global_position == stream[position - 1].global_position
            assert all(ids[id_] == 1 for id_ in sent.ids)
        # An append the end of the test cut off (not the stop) is stored once or not at all;
        # it would be the stream's last.
        for sent in writer.sent[len(done) :]:
            assert {ids[id_] for id_ in sent.ids} in ({0}, {1})


def test_appends_across_an_immediate_stop_are_each_stored_exactly_once(
    own_cluster: OwnCluster,
) -> None:
    url = with_options(own_cluster.url, schema="crash", auto_migrate="true")
    store = connect(url)
    stop = threading.Event()
    writers = [Writer(n) for n in range(WRITERS)]
    threads = [threading.Thread(target=w.run, args=(store, stop)) for w in writers]
    try:
        for thread in threads:
            thread.start()
        _wait_for("before the stop", writers, [APPENDS_AROUND] * WRITERS)
        stopped_at = time.monotonic()
        own_cluster.stop_immediately()
        time.sleep(DOWN)
        own_cluster.start()
        after = [w.acknowledged() + APPENDS_AROUND for w in writers]
        _wait_for("after the start", writers, after)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=DEADLINE)
    assert all(w.failure is None for w in writers), [w.failure for w in writers]
    # The engine sends again by itself what it knows was not stored, and finds out whether an
    # append cut off by the stop was; the client sends again what raised. Either way appends
    # were in flight when the server stopped, and each one returned after it started.
    spanning = [s for w in writers for s in w.sent if s.sent_at < stopped_at < s.returned_at]
    assert spanning, "appends were in flight when the server stopped"
    with store:
        _assert_stored_exactly_once(store, writers)
    with connect(url) as reopened:
        _assert_stored_exactly_once(reopened, writers)
