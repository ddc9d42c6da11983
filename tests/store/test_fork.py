"""Stores across `os.fork()`: a store opened before the fork works in the child (SQLite,
memory), while a thread of the parent appends in a loop, and nothing is lost or corrupted."""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path

import pytest

import eventvault
from eventvault import EventStore, NewEvent, StreamState
from eventvault.errors import StoreForkedError
from eventvault.serialization import verify_chain
from eventvault.store.seam import Transaction
from eventvault.store.sqlite import SQLiteEventStore
from tests.engines.toy import ToyEventStore, ToyLog

from .forking import Appender, in_forked_child

pytestmark = pytest.mark.filterwarnings(
    # Python 3.12+ warns that a process with threads forks: forking while a thread appends is
    # what these tests are about.
    "ignore:This process .* is multi-threaded:DeprecationWarning"
)

FORKS = 4
CHILD_EVENTS = 25


def _sound(store: EventStore) -> int:
    """Check the whole log's positions and hash chains (and SQLite's file); return its size."""
    if isinstance(store, SQLiteEventStore):
        assert store.integrity_check() == ["ok"]
    return verify_chain(store.export_events())


def _child_appends_and_reads(store: EventStore, stream: str) -> str:
    for n in range(CHILD_EVENTS):
        store.append_to_stream(
            stream,
            [NewEvent("Forked", {"n": n})],
            expected_version=n - 1 if n else StreamState.NO_STREAM,
        )
    events = list(store.read_stream(stream))
    assert [event.data["n"] for event in events] == list(range(CHILD_EVENTS))
    with store.subscribe_to_stream(stream) as subscription:
        assert len(subscription.next_batch(timeout=5)) == CHILD_EVENTS
    return f"{store.head_position()} {_sound(store)}"


@pytest.mark.parametrize("url", ["file", "sqlite:///:memory:", "memory://"])
def test_a_store_opened_before_fork_works_in_the_child_while_a_thread_appends(
    url: str, tmp_path: Path
) -> None:
    shared = url == "file"
    url = str(tmp_path / "events.db") if shared else url
    with eventvault.connect(url) as store:
        appender = Appender(store, "parent-1")
        try:
            appender.wait_for(50)
            for fork in range(FORKS):
                work = functools.partial(_child_appends_and_reads, store, f"child-{fork}")
                head, checked = in_forked_child(work).split()
                assert int(head) >= CHILD_EVENTS
                # The parent's thread may append between the child's two looks at the log.
                assert int(checked) >= int(head)
                appender.wait_for(len(appender.acknowledged) + 20)
        finally:
            appender.stop()
        parent_events = [e.global_position for e in store.read_stream("parent-1")]
        assert parent_events == [result.global_position for result in appender.acknowledged]
        children = {
            info.stream_name: info.version
            for info in store.list_streams()
            if info.stream_name.startswith("child-")
        }
        # A file is shared: the children's events are in it. A store in memory was the child's
        # own copy: the parent's holds none of them.
        assert children == (
            {f"child-{n}": CHILD_EVENTS - 1 for n in range(FORKS)} if shared else {}
        )
        assert _sound(store) == store.head_position()


def test_a_child_keeps_its_writes_when_the_parent_closes_the_store(tmp_path: Path) -> None:
    path = str(tmp_path / "events.db")
    ready_read, ready_write = os.pipe()
    closed_read, closed_write = os.pipe()
    store = eventvault.connect(path)
    store.append_to_stream("parent-1", [NewEvent("Opened", {})], expected_version=StreamState.ANY)

    def child() -> str:
        store.append_to_stream(
            "child-1", [NewEvent("First", {})], expected_version=StreamState.NO_STREAM
        )
        os.write(ready_write, b"x")
        os.read(closed_read, 1)  # the parent has closed its store, its last connection
        for n in range(50):
            store.append_to_stream("child-1", [NewEvent("More", {"n": n})], expected_version=n)
        store.close()
        return "done"

    def parent_closes() -> None:
        os.read(ready_read, 1)
        store.close()
        os.write(closed_write, b"x")

    closer = threading.Thread(target=parent_closes)
    closer.start()
    assert in_forked_child(child) == "done"
    closer.join()
    with eventvault.connect(path) as reopened:
        assert reopened.get_stream_version("child-1") == 50
        assert _sound(reopened) == 52


def test_a_store_whose_engine_cannot_fork_refuses_at_once_in_the_child() -> None:
    store = ToyEventStore(ToyLog(), "toy://forked")
    store.append_to_stream("s-1", [NewEvent("A", {})], expected_version=StreamState.ANY)

    def child() -> str:
        try:
            store.append_to_stream("s-1", [NewEvent("B", {})], expected_version=0)
        except StoreForkedError as exc:
            message = str(exc)
        assert store.closed
        store.close()  # does nothing: the child never touches what it shares
        try:
            list(store.read_all())
        except StoreForkedError:
            return message
        return "read"

    message = in_forked_child(child)
    assert f"was opened in process {os.getpid()}" in message
    assert "the toy engine does not carry a store across fork()" in message
    assert store.head_position() == 1
    store.close()


@pytest.mark.parametrize("url", ["file", "memory://"])
def test_a_fork_inside_a_transaction_makes_the_child_refuse_the_store(
    url: str, tmp_path: Path
) -> None:
    store = eventvault.connect(str(tmp_path / "events.db") if url == "file" else url)

    def child() -> str:
        try:
            store.append_to_stream("s-1", [NewEvent("B", {})], expected_version=StreamState.ANY)
        except StoreForkedError as exc:
            return str(exc)
        return "appended"

    def work(tx: Transaction) -> str:
        tx.append_to_stream("s-1", [NewEvent("A", {})], expected_version=StreamState.NO_STREAM)
        return in_forked_child(child)

    with store:
        message = store.run_transaction(work)
        assert "forked inside one of its transactions" in message
        assert store.get_stream_version("s-1") == 0
