"""The read side of the PostgreSQL engine: pages of the log that never skip a late commit.

A reader delivers an event only when its writing transaction's id is below the snapshot's
xmin: every transaction that could still commit a lower position has then finished, so a reader
never sees a position that is filled in later (docs/adr/0004-postgres-global-order.md). Rows
committed beyond that horizon are held back, briefly waited for, and reported when they stay
held back (`HorizonWatch`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from eventvault.errors import EventVaultError
from eventvault.serialization import MAX_POSITION
from eventvault.store.postgres._batch import Row
from eventvault.store.postgres._connections import Connections
from eventvault.store.postgres._horizon import (
    BLOCKERS_SQL,
    XID_MODULUS,
    HorizonStatus,
    blocker_from_row,
    describe,
)
from eventvault.store.postgres._sql import Statements

__all__ = ["Reader"]

logger = logging.getLogger("eventvault.postgres")

STALL_LOG_INTERVAL: Final = 30.0
"""Seconds between two warnings about the same stalled horizon."""
_GLOBAL_POSITION: Final = 2
"""The column of a row of `read_forward` that holds its global position."""
_DELIVERABLE: Final = 10
"""The column of a row of `read_forward` that says whether it is below the horizon (the event
columns come first, in `decode_rows` order)."""


class Reader:
    """The queries of one store's reads.

    Args:
        connections: the store's pool.
        sql: the store's statements.
        schema: the store's schema, for messages.
        horizon_wait: the most seconds a read of the global log waits for transactions that
            were in flight when it started.
        stall_warning_after: seconds readers may be held below the head before a warning
            naming the transaction that holds them is logged.
        is_closed: whether the store was closed (a closed store stops waiting).
    """

    def __init__(
        self,
        connections: Connections,
        sql: Statements,
        *,
        schema: str,
        horizon_wait: float,
        stall_warning_after: float,
        is_closed: Callable[[], bool],
    ) -> None:
        self._connections = connections
        self._sql = sql
        self._schema = schema
        self._horizon_wait = horizon_wait
        self._stall_warning_after = stall_warning_after
        self._is_closed = is_closed
        self._blocked_since: float | None = None
        self._last_stall_log = 0.0

    def fetch(self, query: str, params: Sequence[object] | Mapping[str, object]) -> list[Row]:
        """Run one read statement (see `Connections.fetch`)."""
        return self._connections.fetch(query, params)

    # -- streams -----------------------------------------------------------------------------

    def stream_rows(
        self, stream_name: str, start: int | None, backwards: bool, limit: int
    ) -> list[Row]:
        """Up to `limit` rows of a stream from `start` (inclusive), in stream order or back."""
        if backwards:
            bound = MAX_POSITION if start is None else start
            query = self._sql.read_stream_backward
        else:
            bound = start or 0
            query = self._sql.read_stream_forward
        return self.fetch(query, {"name": stream_name, "bound": bound, "limit": limit})

    # -- the global log ----------------------------------------------------------------------

    def _filters(
        self, query: str, event_types: tuple[str, ...] | None, stream_prefix: str | None
    ) -> tuple[str, list[object]]:
        params: list[object] = []
        if event_types is not None:
            query += " AND event_type = ANY(%s::text[])"
            params.append(list(event_types))
        if stream_prefix is not None:
            query += " AND starts_with(stream_name, %s)"
            params.append(stream_prefix)
        return query, params

    def forward_rows(
        self,
        after: int,
        limit: int,
        event_types: tuple[str, ...] | None,
        stream_prefix: str | None,
    ) -> list[Row]:
        """The deliverable rows of one page after `after`.

        The page is the first `limit` committed rows; each says whether its transaction is
        below the horizon. Positions and transaction ids rise together, so the deliverable rows
        are a prefix. Rows committed beyond the horizon mean transactions that began before
        this read are still open: wait (briefly) until those rows become deliverable, so a read
        sees everything committed before it started.
        """
        query, extra = self._filters(self._sql.read_forward, event_types, stream_prefix)
        query += " ORDER BY global_position LIMIT %s"
        return self._settled(query, [after, *extra, limit], _GLOBAL_POSITION, _DELIVERABLE)

    def raw_rows(self, after: int, limit: int) -> list[Row]:
        """The deliverable rows after `after`, removed ones included, each with `removed_by`
        after the column that says whether it is deliverable."""
        return self._settled(
            self._sql.read_raw_forward, [after, limit], _GLOBAL_POSITION, _DELIVERABLE
        )

    def hash_rows(self, after: int, limit: int) -> list[Row]:
        """(global position, hash, deliverable) of the deliverable rows after `after`, removed
        ones included."""
        return self._settled(self._sql.read_hashes, [after, limit], 0, 2)

    def _settled(
        self, query: str, params: Sequence[object], position_at: int, deliverable_at: int
    ) -> list[Row]:
        """Run a query for the first rows after a position, keeping the deliverable prefix (see
        `forward_rows`)."""
        waited_for: int | None = None
        deadline = 0.0
        delay = 0.0005
        while True:
            rows = self.fetch(query, params)
            cut = next((i for i, row in enumerate(rows) if not row[deliverable_at]), None)
            if cut is None:
                self._clear()
                return rows
            if waited_for is None:
                waited_for = int(rows[cut][position_at])
                deadline = time.monotonic() + self._horizon_wait
            elif cut > 0 and int(rows[cut - 1][position_at]) >= waited_for:
                # Everything committed before this read began is deliverable now.
                self._clear()
                return rows[:cut]
            if time.monotonic() >= deadline or self._is_closed():
                self._blocked()
                return rows[:cut]
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def visible_head(self) -> int:
        """The highest position readers may deliver, after waiting (briefly) for transactions
        in flight when the call started."""
        deadline: float | None = None
        target = 0
        delay = 0.0005
        while True:
            rows = self.fetch(self._sql.heads, ())
            ((visible_text, head_text),) = rows
            visible, head = int(visible_text), int(head_text)
            if deadline is None:
                target = head
                deadline = time.monotonic() + self._horizon_wait
            if visible >= target:
                self._clear()
                return visible
            if time.monotonic() >= deadline or self._is_closed():
                self._blocked()
                return visible
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def backward_rows(
        self,
        after: int,
        limit: int,
        event_types: tuple[str, ...] | None,
        stream_prefix: str | None,
    ) -> list[Row]:
        """One page of the log before `after` (0: from the visible head), newest first."""
        # Every position below a deliverable one is settled, so bounding the scan by the
        # visible head is enough; no row of it can be filled in later.
        head = self.visible_head()
        bound = head if after == 0 else min(after - 1, head)
        if bound < 1:
            return []
        query, extra = self._filters(self._sql.read_backward, event_types, stream_prefix)
        query += " ORDER BY global_position DESC LIMIT %s"
        return self.fetch(query, [bound, *extra, limit])

    # -- the horizon -------------------------------------------------------------------------

    def _clear(self) -> None:
        self._blocked_since = None

    def _blocked(self) -> None:
        now = time.monotonic()
        if self._blocked_since is None:
            self._blocked_since = now
            return
        if (
            now - self._blocked_since >= self._stall_warning_after
            and now - self._last_stall_log >= STALL_LOG_INTERVAL
        ):
            self._last_stall_log = now
            try:
                status = self.horizon_status()
            except EventVaultError as exc:
                logger.warning(
                    "readers of %s are stalled; status unavailable: %s",
                    self._connections.location,
                    exc,
                )
                return
            if status.blocked:
                logger.warning(
                    "%s (schema %s): %s", self._connections.location, self._schema, describe(status)
                )

    def horizon_status(self) -> HorizonStatus:
        """How far readers can see now, and which open transactions hold them back (see
        `PostgresEventStore.horizon_status`)."""
        xmin_text, visible, head = self.fetch(self._sql.horizon, ())[0]
        blockers: tuple[Any, ...] = ()
        if int(visible) < int(head):
            beyond = self.fetch(self._sql.first_beyond, (int(visible),))
            if beyond:
                xid32 = int(beyond[0][0]) % XID_MODULUS
                rows = self.fetch(BLOCKERS_SQL, {"xid": str(xid32)})
                blockers = tuple(blocker_from_row(row) for row in rows)
        since = self._blocked_since
        return HorizonStatus(
            head_position=int(head),
            visible_position=int(visible),
            snapshot_xmin=int(xmin_text),
            waiting_since=None if since is None else time.monotonic() - since,
            blockers=blockers,
        )
