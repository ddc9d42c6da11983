"""What readers wait for: the snapshot horizon and the transactions that hold it back.

A reader delivers an event only once every transaction that could still commit a lower global
position has finished (see docs/adr/0004-postgres-global-order.md). Any transaction that holds
a transaction id, in any database of the cluster, holds that horizon back while it is open; one
left open for minutes stalls every reader. This module finds it and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

__all__ = ["BLOCKERS_SQL", "BlockingTransaction", "HorizonStatus", "blocker_from_row", "describe"]

XID_MODULUS: Final = 2**32
"""xid8 values modulo this are the 32-bit xids that pg_stat_activity shows."""


@dataclass(frozen=True, slots=True)
class BlockingTransaction:
    """An open transaction older than events that readers are waiting to deliver.

    Attributes:
        pid: the backend's process id (None for a prepared transaction).
        xid: its 32-bit transaction id as PostgreSQL shows it.
        state: the backend's state (`active`, `idle in transaction`, ...), or `prepared`.
        database: the database it is connected to.
        user: the role it runs as.
        application_name: its `application_name`.
        transaction_age: seconds since its transaction started (None when not visible).
        query_start: when its current or last query started (None when not visible).
        query: the start of its current or last query (None when not visible).
    """

    pid: int | None
    xid: int
    state: str
    database: str | None
    user: str | None
    application_name: str | None
    transaction_age: float | None
    query_start: datetime | None
    query: str | None


@dataclass(frozen=True, slots=True)
class HorizonStatus:
    """How far readers of the global log can see, and what holds them back.

    Attributes:
        head_position: the highest global position committed.
        visible_position: the highest global position readers may deliver now; below
            `head_position` while transactions older than the newer events are still open.
        snapshot_xmin: the horizon: the oldest transaction id still running in the cluster.
        waiting_since: seconds readers of this store have been held below the head, or None.
        blockers: the open transactions older than the first undeliverable event, oldest first.
    """

    head_position: int
    visible_position: int
    snapshot_xmin: int
    waiting_since: float | None
    blockers: tuple[BlockingTransaction, ...]

    @property
    def blocked(self) -> bool:
        """Whether committed events are waiting behind an open transaction."""
        return self.visible_position < self.head_position


def blocker_from_row(row: tuple[Any, ...]) -> BlockingTransaction:
    """Build a `BlockingTransaction` from a row of `BLOCKERS_SQL`."""
    pid, xid, state, database, user, application, age, query_start, query = row
    return BlockingTransaction(
        pid=None if pid is None else int(pid),
        xid=int(xid),
        state=str(state) if state is not None else "unknown",
        database=database,
        user=user,
        application_name=application,
        transaction_age=None if age is None else float(age),
        query_start=query_start,
        query=query,
    )


BLOCKERS_SQL: Final = """
SELECT pid, backend_xid::text::bigint, coalesce(state, 'unknown'), datname::text, usename::text,
       application_name, extract(epoch FROM now() - xact_start)::float8, query_start,
       left(query, 200)
FROM pg_stat_activity
WHERE backend_xid IS NOT NULL AND age(backend_xid) > age(%(xid)s::text::xid)
UNION ALL
SELECT NULL, transaction::text::bigint, 'prepared', database::text, owner::text, NULL,
       extract(epoch FROM now() - prepared)::float8, prepared,
       'PREPARE TRANSACTION ' || quote_literal(gid)
FROM pg_prepared_xacts
WHERE age(transaction) > age(%(xid)s::text::xid)
ORDER BY 7 DESC NULLS LAST
"""
"""Transactions older than %(xid)s (a 32-bit xid) that are still open, oldest first."""


def describe(status: HorizonStatus) -> str:
    """A one-line account of a stalled horizon, for the log."""
    if not status.blockers:
        who = "no blocking transaction is visible to this role (grant it pg_read_all_stats)"
    else:
        parts = []
        for blocker in status.blockers[:3]:
            age = "?" if blocker.transaction_age is None else f"{blocker.transaction_age:.1f}s"
            where = "prepared transaction" if blocker.pid is None else f"pid {blocker.pid}"
            parts.append(
                f"{where} xid {blocker.xid} ({blocker.state}, open {age}, db "
                f"{blocker.database}, user {blocker.user}, app {blocker.application_name!r}, "
                f"query started {blocker.query_start}: {blocker.query!r})"
            )
        who = "; ".join(parts)
    waited = "" if status.waiting_since is None else f" for {status.waiting_since:.1f}s"
    return (
        f"readers wait{waited} at global position {status.visible_position} (head "
        f"{status.head_position}) for transaction(s) older than the newer events: {who}"
    )
