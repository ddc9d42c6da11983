"""Live subscriptions: NOTIFY is only a hint, and killed connections lose nothing."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from eventvault import NewEvent, StreamState
from eventvault.errors import WrongExpectedVersionError
from eventvault.store.postgres import PostgresEventStore
from tests.postgres._writers import HeldWriter
from tests.postgres.conftest import with_options


def _kill_store_connections(admin: psycopg.Connection[tuple[object, ...]], schema: str) -> int:
    """Terminate every backend of the stores opened with the default application_name."""
    rows = admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
        (f"eventvault/{schema}",),
    ).fetchall()
    return len(rows)


def test_a_subscriber_is_woken_by_notify_from_another_store(
    store: PostgresEventStore, store_url: str
) -> None:
    with store.subscribe_to_all() as sub, PostgresEventStore(store_url) as other:
        assert store.notifier is not None
        generation = store.notifier.generation
        other.append_to_stream("a-1", [NewEvent("E", {})], expected_version=StreamState.ANY)
        deadline = time.monotonic() + 5
        while store.notifier.generation == generation and time.monotonic() < deadline:
            time.sleep(0.01)
        assert store.notifier.generation > generation
        assert [e.event_type for e in sub.next_batch(timeout=5)] == ["E"]


def test_an_event_committed_without_a_notification_still_reaches_subscribers(
    store: PostgresEventStore, server_url: str
) -> None:
    with store.subscribe_to_all() as sub:
        assert sub.next_batch(timeout=0.1) == []
        positions = HeldWriter(server_url, store.schema, "quiet-1").commit()
        assert [e.global_position for e in sub.next_batch(timeout=5)] == positions


def test_killing_the_subscribers_connections_mid_stream_loses_and_repeats_nothing(
    store_url: str, server_url: str, schema: str, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    writer_url = with_options(server_url, schema=schema, application_name="writer")
    reader = PostgresEventStore(store_url, pool_max=3)
    writer = PostgresEventStore(writer_url)
    total = 300
    received: list[int] = []
    written: list[int] = []
    sub = reader.subscribe_to_all()

    def consume() -> None:
        for event in sub:
            received.append(event.global_position)
            if len(received) >= total:
                return

    consumer = threading.Thread(target=consume)
    consumer.start()
    kills = 0
    try:
        for batch in range(30):
            result = writer.append_to_stream(
                f"s-{batch % 4}",
                [NewEvent("E", {"n": n}) for n in range(10)],
                expected_version=StreamState.ANY,
            )
            written.extend(range(result.global_position - 9, result.global_position + 1))
            if batch % 3 == 0:
                kills += _kill_store_connections(admin, schema)
            time.sleep(0.01)
        consumer.join(timeout=30)
        listener = reader._notifications._listener
        assert listener is not None
        assert listener.reconnects >= 1
    finally:
        sub.close()
        consumer.join(timeout=5)
        writer.close()
        reader.close()
    assert kills > 0
    assert received == written


def test_a_read_after_every_pooled_connection_was_killed_succeeds(
    store: PostgresEventStore, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    store.append_to_stream("a-1", [NewEvent("E", {})], expected_version=StreamState.ANY)
    assert _kill_store_connections(admin, store.schema) > 0
    assert [e.event_type for e in store.read_all()] == ["E"]


def test_an_append_after_every_pooled_connection_was_killed_succeeds(
    store: PostgresEventStore, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    store.append_to_stream("a-1", [NewEvent("E", {})], expected_version=StreamState.ANY)
    assert _kill_store_connections(admin, store.schema) > 0
    result = store.append_to_stream("a-1", [NewEvent("F", {})], expected_version=0)
    assert result.stream_position == 1


def test_an_append_whose_only_pooled_connection_died_recovers_at_once(
    store_url: str, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    # With one connection in the pool, finding out whether the failed statement committed must
    # not wait for a second connection while the dead one is still held.
    with PostgresEventStore(with_options(store_url, pool_max="1")) as store:
        store.append_to_stream("a-1", [NewEvent("E", {})], expected_version=StreamState.NO_STREAM)
        assert _kill_store_connections(admin, store.schema) > 0
        started = time.monotonic()
        result = store.append_to_stream("a-1", [NewEvent("F", {})], expected_version=0)
        assert time.monotonic() - started < 5
        assert result.stream_position == 1
        assert [e.event_type for e in store.read_stream("a-1")] == ["E", "F"]


def test_closing_the_store_stops_its_listener(store_url: str) -> None:
    store = PostgresEventStore(store_url)
    store.subscribe_to_all().close()
    listener = store._notifications._listener
    assert listener is not None
    assert listener.connected.wait(5)
    store.close()
    assert not listener._thread.is_alive()


class _Listening:
    """A plain LISTEN connection on a store's channel, collecting notification payloads."""

    def __init__(self, server_url: str, channel: str) -> None:
        self.conn = psycopg.connect(server_url, autocommit=True)
        self.conn.execute(f'LISTEN "{channel}"')
        self.payloads: list[str] = []

    def until(self, payload: str, timeout: float = 5.0) -> list[str]:
        """Collect payloads until `payload` arrives (or `timeout` passes); return them all."""
        deadline = time.monotonic() + timeout
        while payload not in self.payloads and time.monotonic() < deadline:
            for note in self.conn.notifies(timeout=0.1, stop_after=1):
                self.payloads.append(note.payload)
        return self.payloads

    def close(self) -> None:
        self.conn.close()


def test_each_notification_names_the_last_global_position_of_its_commit(
    store: PostgresEventStore, server_url: str
) -> None:
    listening = _Listening(server_url, store.channel)
    try:
        positions = [
            store.append_to_stream(
                f"n-{i % 3}",
                [NewEvent("E", {}), NewEvent("F", {})],
                expected_version=StreamState.ANY,
            ).global_position
            for i in range(5)
        ]
        payloads = listening.until(str(positions[-1]))
    finally:
        listening.close()
    # One writer: every commit is announced on its own, with its last event's position.
    assert payloads == [str(p) for p in positions]


def test_a_burst_of_appends_from_many_threads_ends_announced(
    store: PostgresEventStore, server_url: str
) -> None:
    listening = _Listening(server_url, store.channel)
    start = threading.Barrier(16)

    def write(index: int) -> None:
        start.wait()
        for _ in range(25):
            store.append_to_stream(
                f"t-{index}", [NewEvent("E", {})], expected_version=StreamState.ANY
            )

    threads = [threading.Thread(target=write, args=(i,)) for i in range(16)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        head = store.head_position()
        payloads = listening.until(str(head))
    finally:
        listening.close()
    assert head == 16 * 25
    # Batches with appends queued behind them may leave their notification to a later batch,
    # but the last commit of the burst is always announced.
    assert str(head) in payloads
    assert [int(p) for p in payloads] == sorted(int(p) for p in payloads)


def test_a_notification_left_to_a_later_batch_is_sent_when_that_batch_writes_nothing(
    store: PostgresEventStore, server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = store.append_to_stream("owed-1", [NewEvent("E", {})], expected_version=StreamState.ANY)
    listening = _Listening(server_url, store.channel)
    # The next append sees appends queued behind it (and a fresh notification), so it leaves
    # its announcement to them; the one that follows fails its version check and writes nothing.
    queued = iter([True])
    monkeypatch.setattr(store._writer._committer, "has_queued", lambda: next(queued, False))
    monkeypatch.setattr(store._notifications, "_announced_at", time.monotonic() + 3600)
    monkeypatch.setattr(store._notifications, "announce", lambda: None)
    second = store.append_to_stream("owed-1", [NewEvent("F", {})], expected_version=0)
    assert second.global_position == first.global_position + 1
    monkeypatch.undo()
    try:
        with pytest.raises(WrongExpectedVersionError):
            store.append_to_stream("owed-1", [NewEvent("G", {})], expected_version=0)
        payloads = listening.until(str(second.global_position))
    finally:
        listening.close()
    assert payloads == [str(second.global_position)]
