"""A PostgreSQL store opened before `os.fork()` works in the child, with connections of its own,
while a thread of the parent appends; the parent's connections are never touched."""

from __future__ import annotations

import functools

import pytest

from eventvault import NewEvent, StreamState
from eventvault.serialization import verify_chain
from eventvault.store.postgres import PostgresEventStore
from tests.store.forking import Appender, in_forked_child

pytestmark = pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded:DeprecationWarning"
)


def test_a_store_opened_before_fork_works_in_the_child_while_a_thread_appends(
    store: PostgresEventStore,
) -> None:
    appender = Appender(store, "parent-1")

    def child(name: str) -> str:
        for n in range(20):
            store.append_to_stream(
                name,
                [NewEvent("Forked", {"n": n})],
                expected_version=n - 1 if n else StreamState.NO_STREAM,
            )
        assert [e.data["n"] for e in store.read_stream(name)] == list(range(20))
        with store.subscribe_to_stream(name) as subscription:
            assert len(subscription.next_batch(timeout=5)) == 20
        store.close()
        return "done"

    try:
        appender.wait_for(20)
        for fork in range(3):
            assert in_forked_child(functools.partial(child, f"child-{fork}")) == "done"
            appender.wait_for(len(appender.acknowledged) + 10)
    finally:
        appender.stop()
    assert [e.global_position for e in store.read_stream("parent-1")] == [
        result.global_position for result in appender.acknowledged
    ]
    for fork in range(3):
        assert store.get_stream_version(f"child-{fork}") == 19
    assert verify_chain(store.export_events()) == store.head_position()
