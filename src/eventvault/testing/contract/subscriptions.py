"""Contract: subscriptions (catch-up, live, switch-over, close) and the async face."""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import threading
import time

import msgspec
import pytest

from eventvault import (
    AsyncEventStore,
    EventStore,
    NewEvent,
    RecordedEvent,
    StreamState,
    connect,
)
from eventvault.store.seam import SQLRow, Transaction
from eventvault.testing.contract.base import ContractBase, EngineSpec, events
from eventvault.testing.contract.seam import COUNT_QUERY, COUNTS, bump

__all__ = ["AsyncContract", "SubscriptionContract"]


def _collect(
    subscription: object, count: int, timeout: float = 30.0
) -> tuple[list[RecordedEvent], threading.Thread]:
    received: list[RecordedEvent] = []

    def run() -> None:
        for event in subscription:  # type: ignore[attr-defined]
            received.append(event)
            if len(received) >= count:
                return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return received, thread


class SubscriptionContract(ContractBase):
    """Every matching event exactly once, in order, from catch-up into live (guarantee 7)."""

    def test_subscription_catches_up_then_receives_live_events(self, store: EventStore) -> None:
        store.append_to_stream("s-1", events(3), expected_version=StreamState.ANY)
        with store.subscribe_to_all() as subscription:
            received, thread = _collect(subscription, 5)
            time.sleep(0.1)
            store.append_to_stream("s-2", events(2), expected_version=StreamState.ANY)
            thread.join(10)
        assert [e.global_position for e in received] == [
            e.global_position for e in store.read_all()
        ]
        assert subscription.position == received[-1].global_position

    def test_events_appended_during_catch_up_are_delivered_exactly_once_in_order(
        self, store: EventStore
    ) -> None:
        store.append_to_stream("s-0", events(1500), expected_version=StreamState.ANY)
        total = 1500 + 40 * 25

        def write() -> None:
            for n in range(40):
                store.append_to_stream(
                    f"s-{n % 4 + 1}", events(25), expected_version=StreamState.ANY
                )

        with store.subscribe_to_all() as subscription:
            received, reader = _collect(subscription, total)
            writer = threading.Thread(target=write)
            writer.start()
            writer.join(60)
            reader.join(60)
        positions = [e.global_position for e in received]
        assert positions == [e.global_position for e in store.read_all()]
        assert len(positions) == len(set(positions)) == total

    def test_subscription_resumes_after_a_position(self, store: EventStore) -> None:
        store.append_to_stream("s-1", events(5), expected_version=StreamState.ANY)
        third = list(store.read_all())[2].global_position
        with store.subscribe_to_all(after=third) as subscription:
            batch = subscription.next_batch(timeout=5)
        assert [e.data["n"] for e in batch] == [3, 4]

    def test_subscription_filters_by_type_and_prefix(self, store: EventStore) -> None:
        store.append_to_stream(
            "keep-1", [NewEvent("A", {}), NewEvent("B", {})], expected_version=StreamState.ANY
        )
        store.append_to_stream("drop-1", [NewEvent("A", {})], expected_version=StreamState.ANY)
        with store.subscribe_to_all(event_types=["A"], stream_prefix="keep") as subscription:
            received, thread = _collect(subscription, 2)
            store.append_to_stream(
                "keep-2", [NewEvent("A", {"late": True})], expected_version=StreamState.ANY
            )
            thread.join(10)
        assert [(e.stream_name, e.event_type) for e in received] == [
            ("keep-1", "A"),
            ("keep-2", "A"),
        ]

    def test_stream_subscription_delivers_one_stream_after_a_position(
        self, store: EventStore
    ) -> None:
        store.append_to_stream("s-1", events(3), expected_version=StreamState.ANY)
        store.append_to_stream("s-2", events(3), expected_version=StreamState.ANY)
        with store.subscribe_to_stream("s-1", after=0) as subscription:
            received, thread = _collect(subscription, 3)
            store.append_to_stream("s-1", events(1), expected_version=2)
            thread.join(10)
        assert [e.stream_position for e in received] == [1, 2, 3]
        assert {e.stream_name for e in received} == {"s-1"}
        assert subscription.position == 3

    def test_close_from_another_thread_ends_the_iteration(self, store: EventStore) -> None:
        subscription = store.subscribe_to_all()
        received, thread = _collect(subscription, 10**9)
        time.sleep(0.1)
        subscription.close()
        thread.join(5)
        assert not thread.is_alive()
        assert received == []

    def test_closing_the_store_ends_its_subscriptions(self, engine: EngineSpec) -> None:
        store = engine.open()
        subscription = store.subscribe_to_all()
        _, thread = _collect(subscription, 10**9)
        time.sleep(0.1)
        store.close()
        thread.join(5)
        assert not thread.is_alive()
        assert subscription.closed

    def test_a_live_event_reaches_a_subscriber_in_the_same_process_within_milliseconds(
        self, store: EventStore
    ) -> None:
        delays: list[float] = []
        with store.subscribe_to_all() as subscription:
            for n in range(10):
                sent = time.perf_counter()
                store.append_to_stream(
                    "s-1", [NewEvent("Ping", {"n": n})], expected_version=StreamState.ANY
                )
                (event,) = subscription.next_batch(timeout=5)
                delays.append(time.perf_counter() - sent)
                assert event.data == {"n": n}
        assert statistics.median(delays) < 0.02

    def test_a_live_event_reaches_a_subscriber_in_another_process_within_100_ms(
        self, engine: EngineSpec
    ) -> None:
        if not engine.multiprocess:
            pytest.skip(f"{engine.name} lives in one process")
        delays: list[float] = []
        command = [
            sys.executable,
            "-m",
            "eventvault.testing._workers",
            "append-timed",
            engine.url,
            "ping-1",
            "8",
            "0.15",
        ]
        with (
            engine.open() as store,
            store.subscribe_to_all() as subscription,
            subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as child,
        ):
            assert child.stdout is not None
            for line in child.stdout:
                ack = msgspec.json.decode(line)
                batch = subscription.next_batch(timeout=5)
                arrived = time.time()
                assert [e.global_position for e in batch] == [ack["global"]]
                delays.append(arrived - ack["acked_at"])
            assert child.wait(30) == 0
        assert len(delays) == 8
        assert statistics.median(delays) < 0.1


class AsyncContract(ContractBase):
    """The async face gives the same operations as coroutines and async iterators."""

    def test_async_append_read_and_subscribe(self, store: EventStore) -> None:
        async def scenario() -> tuple[list[int], list[str], int | None]:
            facade = AsyncEventStore(store)
            await facade.append_to_stream("s-1", events(3), expected_version=StreamState.NO_STREAM)
            positions = [e.stream_position async for e in facade.read_stream("s-1")]
            received: list[str] = []
            subscription = facade.subscribe_to_all(after=3)

            async def consume() -> None:
                async for event in subscription:
                    received.append(event.stream_name)
                    if len(received) == 2:
                        subscription.close()

            task = asyncio.create_task(consume())
            await asyncio.sleep(0.05)
            await facade.append_to_stream("s-2", events(2), expected_version=StreamState.ANY)
            await asyncio.wait_for(task, 10)
            return positions, received, await facade.get_stream_version("s-2")

        positions, received, version = asyncio.run(scenario())
        assert positions == [0, 1, 2]
        assert received == ["s-2", "s-2"]
        assert version == 1

    def test_async_read_all_pages_through_the_log(self, store: EventStore) -> None:
        store.append_to_stream("s-1", events(2100), expected_version=StreamState.ANY)

        async def scenario() -> list[int]:
            facade = AsyncEventStore(store)
            return [e.global_position async for e in facade.read_all(after=100)]

        assert asyncio.run(scenario()) == list(range(101, 2101))

    def test_async_export_and_import_move_a_log(self, store: EventStore) -> None:
        store.append_to_stream("s-1", events(3), expected_version=StreamState.ANY)

        async def scenario() -> tuple[int, bool]:
            facade = AsyncEventStore(store)
            exported = [e async for e in facade.export_events()]
            target = AsyncEventStore(connect("memory://"))
            count = await target.import_events(exported)
            await target.close()
            return count, target.closed

        assert asyncio.run(scenario()) == (3, True)

    def test_async_seam_runs_a_transaction_of_rows_and_events(self, store: EventStore) -> None:
        def work(tx: Transaction) -> int:
            bump(tx, "orders", 2)
            return tx.append_to_stream(
                "order-1", events(1), expected_version=StreamState.NO_STREAM
            ).global_position

        async def scenario() -> tuple[int, list[SQLRow], dict[str, int], str]:
            facade = AsyncEventStore(store)
            await facade.use(COUNTS)
            position = await facade.run_transaction(work)
            rows = await facade.query(COUNT_QUERY[facade.dialect], ("orders",))
            return position, rows, await facade.component_versions(), facade.dialect

        position, rows, versions, dialect = asyncio.run(scenario())
        assert [e.global_position for e in store.read_stream("order-1")] == [position]
        assert [tuple(row) for row in rows] == [(2,)]
        assert versions["contract_counts"] == 1
        assert dialect == store.dialect
