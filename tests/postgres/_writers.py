"""Writers that drive the engine's own write statements by hand, to hold or delay a commit."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Self

import psycopg

from eventvault import NewEvent, StreamState
from eventvault.serialization import now_micros
from eventvault.store._append import plan_batch, prepare
from eventvault.store.postgres._batch import event_columns, stream_columns
from eventvault.store.postgres._sql import Statements


class HeldWriter:
    """An append written but not committed: positions reserved, rows inserted, commit pending.

    Uses the engine's statements in the engine's order (stream locks, then reserve), on its own
    connection.
    Unlike the engine it does not retry when another writer creates the same stream first:
    give each one a stream of its own.
    """

    def __init__(self, conninfo: str, schema: str, stream_name: str, count: int = 1) -> None:
        statements = Statements(schema)
        append = prepare(
            stream_name,
            [NewEvent("Held", {"i": i}) for i in range(count)],
            StreamState.ANY,
            1 << 20,
        )
        self.conn = psycopg.connect(conninfo, autocommit=True)
        try:
            self.conn.execute("BEGIN")
            self.conn.execute(statements.lock_streams, ([stream_name],))
            row = self.conn.execute(statements.reserve, (count,)).fetchone()
            assert row is not None
            first = int(row[0])
            heads = {
                str(r[0]): (int(r[1]), bytes(r[2]))
                for r in self.conn.execute(statements.stream_heads, ([stream_name],), binary=True)
            }
            plan = plan_batch([[append]], heads, {}, first, now_micros())
            self.conn.execute(statements.insert_events, event_columns(plan.rows))
            self.conn.execute(statements.upsert_streams, stream_columns(plan.heads))
            self.positions = [row.global_position for row in plan.rows]
            self.pid = self.conn.info.backend_pid
        except BaseException:
            self.conn.close()
            raise

    def commit(self) -> list[int]:
        """Commit (without NOTIFY: subscribers must find the events by polling)."""
        self.conn.execute("COMMIT")
        self.conn.close()
        return self.positions

    def rollback(self) -> None:
        """Abort: the reserved positions stay a permanent gap."""
        self.conn.execute("ROLLBACK")
        self.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.conn.closed:
            self.conn.close()


def delayed_appends(
    conninfo: str, schema: str, stream_name: str, delays: list[float], aborts: list[bool]
) -> list[int]:
    """Append one event per delay, each held open that long before it commits (or aborts).

    Returns:
        The global positions of the events committed.
    """
    committed: list[int] = []
    for delay, abort in zip(delays, aborts, strict=True):
        with HeldWriter(conninfo, schema, stream_name) as writer:
            time.sleep(delay)
            if abort:
                writer.rollback()
            else:
                committed.extend(writer.commit())
    return committed
