"""A small engine that lives outside the package: what docs/howto-write-an-engine.md describes.

`toy://NAME` opens a log kept in this process under NAME: it outlives `close()` and every store
opened on the same name shares it (durable for the life of the process, so the contract suite's
reopening tests apply). `toy://` opens a new, private log. The engine implements the primitives
of `EventStore` and nothing else; validation, paging, subscriptions, export and import come from
the base class.

The log is one `ToyLog`: rows as the engines store them, an index per stream and per event id,
and one lock under which every change is decided and applied, so an append is atomic and global
positions follow commit order.
"""

from __future__ import annotations

import bisect
import threading
import uuid
from collections.abc import Iterator
from typing import cast

from eventvault import EventStore, StoreStats
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
from eventvault.store.notify import Notifier
from eventvault.store.registry import ConnectOptions
from eventvault.store.url import StoreURL
from eventvault.types import AppendResult, RawEvent, RecordedEvent, StreamInfo

__all__ = ["ToyEventStore", "ToyLog", "open_toy"]


class ToyLog:
    """The storage of one toy store: everything below is read and changed under `lock`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows: list[StoredRow] = []
        self.positions: list[int] = []  # the global position of each row, for bisect
        self.streams: dict[str, list[StoredRow]] = {}
        self.ids: dict[uuid.UUID, tuple[str, int, int]] = {}
        self.notifier = Notifier()

    def head(self) -> int:
        return self.positions[-1] if self.positions else 0

    def version(self, stream_name: str) -> int | None:
        stream = self.streams.get(stream_name)
        return stream[-1][1] if stream else None

    def add(self, rows: list[StoredRow]) -> None:
        for row in rows:
            self.rows.append(row)
            self.positions.append(row[2])
            self.streams.setdefault(row[0], []).append(row)
            self.ids[uuid.UUID(bytes=row[3])] = (row[0], row[1], row[2])

    def index_after(self, position: int) -> int:
        """The index of the first row after global position `position`."""
        return bisect.bisect_right(self.positions, position)


_logs: dict[str, ToyLog] = {}
_logs_lock = threading.Lock()


def _named_log(name: str) -> ToyLog:
    with _logs_lock:
        return _logs.setdefault(name, ToyLog())


class ToyEventStore(EventStore):
    """A store on a `ToyLog`.

    Args:
        log: the storage.
        url: the URL it was opened with.
        max_event_bytes: the limit on one event's encoded data plus metadata.
        read_only: refuse appends and imports.
    """

    def __init__(
        self,
        log: ToyLog,
        url: str = "toy://",
        *,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        read_only: bool = False,
    ) -> None:
        super().__init__(url, max_event_bytes=max_event_bytes, read_only=read_only)
        self._log = log

    @property
    def notifier(self) -> Notifier:
        return self._log.notifier

    @property
    def embedded(self) -> bool:
        return True

    # -- writing -----------------------------------------------------------------------------

    def _append(self, appends: list[PendingAppend]) -> list[AppendResult]:
        log = self._log
        with log.lock:
            self._check_open()
            results: list[AppendResult] = []
            planned: list[StoredRow] = []
            next_position = log.head() + 1
            recorded_at = now_micros()
            for append in appends:
                stream = log.streams.get(append.stream_name)
                version = stream[-1][1] if stream else None
                found = {i: log.ids[i] for i in append.given_ids if i in log.ids}
                retry = resolve_existing_ids(append, found)
                if retry is not None:
                    results.append(retry)
                    continue
                if not version_matches(append.expected_version, version):
                    raise wrong_version(append, version)
                # A stream appears once in an append (`prepare_many` sees to it).
                previous = stream[-1][9] if stream else GENESIS_HASH
                rows = cast(
                    list[StoredRow], chain(append, version, previous, next_position, recorded_at)
                )
                next_position += len(rows)
                planned.extend(rows)
                results.append(AppendResult(rows[-1][1], rows[-1][2]))
            log.add(planned)
        if planned:
            log.notifier.notify()
        return results

    def _import(self, batches: Iterator[list[StoredRow]]) -> None:
        log = self._log
        with log.lock:
            self._check_open()
            if log.rows:
                raise NotEmptyError(self.url, log.head())
            staged: list[StoredRow] = []
            seen: set[bytes] = set()
            for batch in batches:
                for row in batch:
                    if row[3] in seen:
                        raise ImportFileError(
                            f"event id {uuid.UUID(bytes=row[3])} appears twice in the import"
                        )
                    seen.add(row[3])
                staged.extend(batch)
            log.add(staged)

    # -- reading -----------------------------------------------------------------------------

    def _read_stream_page(
        self, stream_name: str, start: int | None, backwards: bool, limit: int
    ) -> list[RecordedEvent]:
        with self._log.lock:
            stream = self._log.streams.get(stream_name, [])
            if backwards:
                end = len(stream) if start is None else min(start + 1, len(stream))
                rows = list(reversed(stream[max(0, end - limit) : end]))
            else:
                rows = stream[start or 0 : (start or 0) + limit]
        return decode_rows(rows)

    def _read_all_page(
        self,
        after: int,
        backwards: bool,
        limit: int,
        event_types: tuple[str, ...] | None,
        stream_prefix: str | None,
    ) -> list[RecordedEvent]:
        def wanted(row: StoredRow) -> bool:
            if event_types is not None and row[4] not in event_types:
                return False
            return stream_prefix is None or row[0].startswith(stream_prefix)

        log = self._log
        picked: list[StoredRow] = []
        with log.lock:
            if backwards:
                indexes = reversed(
                    range(len(log.rows) if after == 0 else log.index_after(after - 1))
                )
            else:
                indexes = iter(range(log.index_after(after), len(log.rows)))
            for index in indexes:
                if len(picked) == limit:
                    break
                if wanted(log.rows[index]):
                    picked.append(log.rows[index])
        return decode_rows(picked)

    def _read_raw_page(self, after: int, limit: int) -> list[RawEvent]:
        log = self._log
        with log.lock:
            start = log.index_after(after)
            rows = log.rows[start : start + limit]
        return raw_rows(rows)

    def _list_streams_page(self, after: str | None, limit: int) -> list[StreamInfo]:
        with self._log.lock:
            names = sorted(self._log.streams)
            begin = 0 if after is None else bisect.bisect_right(names, after)
            return [
                StreamInfo(name, self._log.streams[name][-1][1], self._log.streams[name][-1][2])
                for name in names[begin : begin + limit]
            ]

    def get_stream_version(self, stream_name: str) -> int | None:
        self._check_open()
        validate_stream_name(stream_name)
        with self._log.lock:
            return self._log.version(stream_name)

    def head_position(self) -> int:
        self._check_open()
        with self._log.lock:
            return self._log.head()

    def stats(self) -> StoreStats:
        self._check_open()
        log = self._log
        with log.lock:
            return StoreStats(
                event_count=len(log.rows),
                stream_count=len(log.streams),
                head_position=log.head(),
                first_recorded_at=from_micros(log.rows[0][8]) if log.rows else None,
                last_recorded_at=from_micros(log.rows[-1][8]) if log.rows else None,
            )

    def _close(self) -> None:
        """Nothing to release: the log outlives the store, as a file would."""


def open_toy(url: StoreURL, options: ConnectOptions) -> ToyEventStore:
    """The engine's opener: `toy://NAME` (a named log of this process) or `toy://` (a new one).

    Raises:
        InvalidURLError: the URL has a path or options.
    """
    if url.location or url.options:
        raise InvalidURLError(url.text, "a toy URL is toy://NAME, without a path or options")
    log = _named_log(url.host) if url.host else ToyLog()
    return ToyEventStore(
        log, url.text, max_event_bytes=options.max_event_bytes, read_only=options.read_only
    )
