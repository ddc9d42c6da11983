"""Live subscriptions: NOTIFY is only a hint, and killed connections lose nothing."""

from __future__ import annotations

import threading
import time

import psycopg

from eventvault import NewEvent, StreamState
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
        listener = reader._listener
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


def test_closing_the_store_stops_its_listener(store_url: str) -> None:
    store = PostgresEventStore(store_url)
    store.subscribe_to_all().close()
    listener = store._listener
    assert listener is not None
    assert listener.connected.wait(5)
    store.close()
    assert not listener._thread.is_alive()
