"""The in-memory engine: the executable reference of the store's semantics.

Events are kept as the same encoded rows the durable engines store, so a payload mutated by the
caller after an append cannot change what was recorded, and reads decode exactly as elsewhere.
Nothing survives `close()`; each `connect("memory://")` is a new, empty store.

Opened read-only, it is a new, empty store that refuses appends and imports: it can be read, and
nothing can ever be in it. In a forked child, a store is the child's own copy of the events as
they were at the fork (an append in flight finishes first, so the copy holds it whole or not at
all); neither process sees the other's later appends.
"""

from __future__ import annotations

import bisect
import threading
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, cast

from eventvault.errors import ImportFileError, InvalidURLError, NotEmptyError
from eventvault.serialization import (
    DEFAULT_MAX_EVENT_BYTES,
    GENESIS_HASH,
    decode_rows,
    from_micros,
    now_micros,
    raw_rows,
    validate_stream_name,
)
from eventvault.store._append import (
    PendingAppend,
    StoredRow,
    chain,
    resolve_existing_ids,
    version_matches,
    wrong_version,
)
from eventvault.store._fork import ForkGuard
from eventvault.store.base import EventStore, StoreStats
from eventvault.store.notify import Notifier
from eventvault.types import AppendResult, PayloadEvent, RawEvent, RecordedEvent, StreamInfo

if TYPE_CHECKING:
    from eventvault.store.registry import ConnectOptions
    from eventvault.store.url import StoreURL

__all__ = ["MemoryEventStore", "open_memory"]


class MemoryEventStore(EventStore):
    """An event store held in this process's memory.

    Args:
        url: the URL it was opened with, for messages.
        max_event_bytes: the limit on one event's encoded data plus metadata.
        read_only: refuse appends and imports (the store stays empty).
    """

    def __init__(
        self,
        url: str = "memory://",
        *,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        read_only: bool = False,
    ) -> None:
        super().__init__(url, max_event_bytes=max_event_bytes, read_only=read_only)
        self._lock = threading.RLock()
        self._log: list[StoredRow] = []
        self._streams: dict[str, list[StoredRow]] = {}
        self._ids: dict[uuid.UUID, tuple[str, int, int]] = {}
        self._notifier = Notifier()
        self._paused = False
        self._fork_guard = ForkGuard(
            before=self._pause, after_in_parent=self._resume, after_in_child=self._rebuild
        )

    @property
    def notifier(self) -> Notifier:
        return self._notifier

    @property
    def embedded(self) -> bool:
        return True

    # -- fork --------------------------------------------------------------------------------

    def _pause(self) -> None:
        # Holding the lock across the fork: the child's copy has every append whole or not at all.
        self._lock.acquire()
        self._paused = True

    def _resume(self) -> None:
        self._paused = False
        self._lock.release()

    def _rebuild(self) -> None:
        if not self._paused:
            # Made by another thread while this one forked: its state may be half made.
            self._refuse_after_fork("it was being opened while the process forked")
            return
        # The lock copied into the child is held (by the forking thread); take a new one.
        self._paused = False
        self._lock = threading.RLock()
        self._notifier = Notifier()
        self._forked()

    def _head(self) -> int:
        return self._log[-1][2] if self._log else 0

    def _append(self, appends: list[PendingAppend]) -> list[AppendResult]:
        with self._lock:
            self._check_open()
            planned: list[StoredRow] = []
            results: list[AppendResult] = []
            position = self._head() + 1
            recorded_at = now_micros()
            for append in appends:
                stream = self._streams.get(append.stream_name)
                version = stream[-1][1] if stream else None
                found = {i: self._ids[i] for i in append.given_ids if i in self._ids}
                # A retry of a stored append returns its result; any other stored id raises.
                retry = resolve_existing_ids(append, found)
                if retry is not None:
                    results.append(retry)
                    continue
                if not version_matches(append.expected_version, version):
                    raise wrong_version(append, version)
                previous = stream[-1][9] if stream else GENESIS_HASH
                rows = cast(
                    list[StoredRow], chain(append, version, previous, position, recorded_at)
                )
                position += len(rows)
                planned.extend(rows)
                results.append(AppendResult(rows[-1][1], rows[-1][2]))
            self._store_rows(planned)
        if planned:
            self._notifier.notify()
        return results

    def _store_rows(self, rows: list[StoredRow]) -> None:
        for row in rows:
            self._log.append(row)
            self._streams.setdefault(row[0], []).append(row)
            self._ids[uuid.UUID(bytes=row[3])] = (row[0], row[1], row[2])

    def _read_stream_page(
        self, stream_name: str, start: int | None, backwards: bool, limit: int
    ) -> list[RecordedEvent]:
        with self._lock:
            stream = self._streams.get(stream_name, [])
            if backwards:
                end = len(stream) if start is None else min(start + 1, len(stream))
                rows = stream[max(0, end - limit) : end][::-1]
            else:
                begin = start or 0
                rows = stream[begin : begin + limit]
        return decode_rows(rows)

    def _read_stream_payload_page(
        self, stream_name: str, start: int, limit: int
    ) -> list[PayloadEvent]:
        with self._lock:
            rows = self._streams.get(stream_name, [])[start : start + limit]
        return [PayloadEvent(row[1], row[4], row[5], row[6], row[8]) for row in rows]

    def _rows_after(self, after: int) -> int:
        """The index in the log of the first event after global position `after`."""
        return bisect.bisect_right(self._log, after, key=lambda row: row[2])

    def _read_all_page(
        self,
        after: int,
        backwards: bool,
        limit: int,
        event_types: tuple[str, ...] | None,
        stream_prefix: str | None,
    ) -> list[RecordedEvent]:
        def wanted(row: StoredRow) -> bool:
            return (event_types is None or row[4] in event_types) and (
                stream_prefix is None or row[0].startswith(stream_prefix)
            )

        picked: list[StoredRow] = []
        with self._lock:
            if backwards:
                index = len(self._log) if after == 0 else self._rows_after(after - 1)
                while index > 0 and len(picked) < limit:
                    index -= 1
                    if wanted(self._log[index]):
                        picked.append(self._log[index])
            else:
                index = self._rows_after(after)
                while index < len(self._log) and len(picked) < limit:
                    if wanted(self._log[index]):
                        picked.append(self._log[index])
                    index += 1
        return decode_rows(picked)

    def _read_raw_page(self, after: int, limit: int) -> list[RawEvent]:
        with self._lock:
            index = self._rows_after(after)
            rows = self._log[index : index + limit]
        return raw_rows(rows)

    def _list_streams_page(self, after: str | None, limit: int) -> list[StreamInfo]:
        with self._lock:
            names = sorted(self._streams)
            begin = 0 if after is None else bisect.bisect_right(names, after)
            return [
                StreamInfo(name, self._streams[name][-1][1], self._streams[name][-1][2])
                for name in names[begin : begin + limit]
            ]

    def _import(self, batches: Iterator[list[StoredRow]]) -> None:
        with self._lock:
            self._check_open()
            if self._log:
                raise NotEmptyError(self.url, self._head())
            staged: list[StoredRow] = []
            seen: set[bytes] = set()
            for batch in batches:
                for row in batch:
                    if row[3] in seen:
                        raise ImportFileError(
                            f"event id {uuid.UUID(bytes=row[3])} appears twice in the events "
                            "imported"
                        )
                    seen.add(row[3])
                staged.extend(batch)
            for row in staged:
                self._store_rows([row])

    def get_stream_version(self, stream_name: str) -> int | None:
        self._check_open()
        validate_stream_name(stream_name)
        with self._lock:
            stream = self._streams.get(stream_name)
            return stream[-1][1] if stream else None

    def head_position(self) -> int:
        self._check_open()
        with self._lock:
            return self._head()

    def stats(self) -> StoreStats:
        self._check_open()
        with self._lock:
            log = self._log
            return StoreStats(
                event_count=len(log),
                stream_count=len(self._streams),
                head_position=self._head(),
                first_recorded_at=from_micros(log[0][8]) if log else None,
                last_recorded_at=from_micros(log[-1][8]) if log else None,
            )

    def _close(self) -> None:
        with self._lock:
            self._log = []
            self._streams = {}
            self._ids = {}


def open_memory(url: StoreURL, options: ConnectOptions) -> MemoryEventStore:
    """Open a `memory://` URL: a new, empty store.

    Raises:
        InvalidURLError: the URL has a path, a host or options.
    """
    if url.host or url.location or url.options:
        raise InvalidURLError(url.text, "the in-memory engine takes no path or options: memory://")
    return MemoryEventStore(
        url.text, max_event_bytes=options.max_event_bytes, read_only=options.read_only
    )
