"""`AsyncRepository`: the repository for asyncio code (FastAPI handlers), over the same code.

It is a thin face over `Repository`, as `AsyncEventStore` is over `EventStore`: loads run the
one replay (`Repository.get`) in a worker thread, a page of events at a time as the sync
repository reads them; saves build their appends with the repository's own `_appends` and
queue them for the store's group commit from the event loop (`AsyncEventStore`), then finish
with its own `_saved`. Nothing about decoding, replaying, snapshots or expected versions is
written twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from eventvault.aggregates.aggregate import Aggregate
from eventvault.aggregates.registry import EventRegistry
from eventvault.aggregates.repository import Repository
from eventvault.aggregates.snapshots import Snapshot, SnapshotStore
from eventvault.errors import AggregateQueryError, WrongExpectedVersionError
from eventvault.store.aio import AsyncEventStore
from eventvault.types import AppendResult, JSONObject

__all__ = ["AsyncRepository"]

A = TypeVar("A", bound=Aggregate)  # type: ignore[type-arg]


class AsyncRepository(Generic[A]):
    """Loads and saves the aggregates of one class, from coroutines. See `Repository` for the
    meaning of every argument and method.

    Args:
        aggregate_type: the aggregate class.
        store: the async store (`eventvault.connect_async(...)`).
        registry: the registry of the event classes.
        snapshot_store: as for `Repository`.
        snapshot_every: as for `Repository`.

    Attributes:
        repository: the sync repository it drives, on `store.store`.
    """

    def __init__(
        self,
        aggregate_type: type[A],
        store: AsyncEventStore,
        registry: EventRegistry,
        *,
        snapshot_store: SnapshotStore | None = None,
        snapshot_every: int | None = None,
    ) -> None:
        self.store = store
        self.repository: Repository[A] = Repository(
            aggregate_type,
            store.store,
            registry,
            snapshot_store=snapshot_store,
            snapshot_every=snapshot_every,
        )

    async def get(
        self,
        aggregate_id: str,
        *,
        version: int | None = None,
        as_of: dt.datetime | None = None,
    ) -> A:
        """See `Repository.get`; the replay runs in a worker thread."""
        return await asyncio.to_thread(
            self.repository.get, aggregate_id, version=version, as_of=as_of
        )

    async def exists(self, aggregate_id: str) -> bool:
        """See `Repository.exists`."""
        stream_name = self.repository.aggregate_type.stream_name_for(aggregate_id)
        return await self.store.get_stream_version(stream_name) is not None

    async def save(self, *aggregates: A, metadata: JSONObject | None = None) -> list[AppendResult]:
        """See `Repository.save`: the appends queue for the group commit from the event loop,
        so that concurrent saves share commits. A policy snapshot is then taken in a worker
        thread."""
        dirty = [aggregate for aggregate in aggregates if aggregate.pending_events]
        if not dirty:
            return []
        appends = self.repository._appends(dirty, metadata)
        if len(appends) == 1:
            one = appends[0]
            results = [
                await self.store.append_to_stream(
                    one.stream_name, one.events, expected_version=one.expected_version
                )
            ]
        else:
            results = await self.store.append_to_streams(appends)
        if self.repository.snapshot_every is None:
            self.repository._saved(dirty)
        else:
            await asyncio.to_thread(self.repository._saved, dirty)
        return results

    async def update(
        self,
        aggregate_id: str,
        command: Callable[[A], object | Awaitable[object]],
        *,
        retries: int = 3,
    ) -> A:
        """See `Repository.update`; the command may be a coroutine function."""
        if type(retries) is not int or retries < 0:
            raise AggregateQueryError(f"retries must be an int >= 0, not {retries!r}")
        attempt = 0
        while True:
            aggregate = await self.get(aggregate_id)
            outcome = command(aggregate)
            if isinstance(outcome, Awaitable):
                await outcome
            try:
                await self.save(aggregate)
            except WrongExpectedVersionError:
                if attempt >= retries:
                    raise
                attempt += 1
                continue
            return aggregate

    async def take_snapshot(self, aggregate: A) -> Snapshot:
        """See `Repository.take_snapshot`."""
        return await asyncio.to_thread(self.repository.take_snapshot, aggregate)

    async def close(self) -> None:
        """See `Repository.close`."""
        await asyncio.to_thread(self.repository.close)
