"""The projections component: checkpoints, leases, active versions and history (failures and
what people do about them are in `failures.py`).

These tables live beside each read model: in the store's database for projections kept there
(and for every `Sink`), in the other database for a projection whose `database` names one. Every
change a runner makes runs in a transaction that first checks its lease's fencing token
(`fence`), so a runner that lost its lease commits nothing; every checkpoint moves by
compare-and-set (`advance`), so two writers can never both apply the same events.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from eventvault.errors import LeaseLostError
from eventvault.projections.projection import Projection, ProjectionBase
from eventvault.projections.sql import enter_schema, physical_table, render
from eventvault.store.database import SQLDatabase
from eventvault.store.seam import (
    Component,
    Dialect,
    SQLRow,
    Transaction,
    load_migrations,
    register_component,
)

__all__ = [
    "PROJECTIONS",
    "HistoryEntry",
    "LeaseRow",
    "add_history",
    "advance",
    "database_now",
    "db_now",
    "fence",
    "fetch_sql",
    "prepare_version",
    "query",
    "read_history",
    "run_sql",
    "switch_to",
]

PROJECTIONS: Final = register_component(
    Component("projections", load_migrations("eventvault.projections", "migrations"))
)
"""The tables of the projections feature; `eventvault migrate` creates them in the store."""

_NOW: Final = "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint"


def _sql(dialect: Dialect, statement: str) -> str:
    return render(statement, dialect, {})


def run_sql(tx: Transaction, statement: str, params: Sequence[object] = ()) -> int:
    """Run one of this module's writing statements (`?` placeholders) in a transaction."""
    return tx.execute(_sql(tx.dialect, statement), params)


def fetch_sql(tx: Transaction, statement: str, params: Sequence[object] = ()) -> list[SQLRow]:
    """Run one of this module's queries (`?` placeholders) in a transaction."""
    return tx.fetch(_sql(tx.dialect, statement), params)


def query(db: SQLDatabase, statement: str, params: Sequence[object] = ()) -> list[SQLRow]:
    """Run one of this module's queries on committed rows (outside a transaction)."""
    return db.query(_sql(db.dialect, statement), params)


def db_now(tx: Transaction) -> int:
    """Now in microseconds since the epoch: the server's clock on PostgreSQL (runners on several
    machines compare lease expiries on one clock), this machine's on SQLite."""
    if tx.dialect == "postgresql":
        return int(tx.fetch(_NOW)[0][0])
    return time.time_ns() // 1000


def database_now(db: SQLDatabase) -> int:
    """`db_now` outside a transaction (for status)."""
    if db.dialect == "postgresql":
        return int(db.query(_NOW)[0][0])
    return time.time_ns() // 1000


# -- leases ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LeaseRow:
    """A lease as stored: who owns a projection's version, until when, and what it reports.

    Attributes:
        owner: the runner's id (empty when released).
        token: the fencing token, one more at every takeover.
        expires_at: microseconds since the epoch (database clock) after which it may be taken.
        renewed_at: when the owner last renewed it.
        state: the owner's report: `running`, `catching up`, `live`, `failed` or `stopped`.
        events_per_second: the owner's recent rate.
        seen_position: how far the owner has looked in the log (at least the checkpoint).
        error: the last error the owner met that is not an event's (empty: none).
    """

    owner: str
    token: int
    expires_at: int
    renewed_at: int
    state: str
    events_per_second: float
    seen_position: int
    error: str


def ensure_lease(tx: Transaction, name: str, version: int) -> None:
    """Make the lease row of a projection's version exist (unowned)."""
    run_sql(
        tx,
        "INSERT INTO {schema}.projection_leases (projection, version, owner, token, expires_at, "
        "renewed_at, state, events_per_second, seen_position, error) "
        "VALUES (?, ?, '', 0, 0, 0, 'stopped', 0, 0, '') ON CONFLICT (projection, version) DO NOTHING",
        (name, version),
    )


def try_acquire(tx: Transaction, name: str, version: int, owner: str, seconds: float) -> int | None:
    """Take a projection's lease if it is free or expired.

    Returns:
        The new fencing token, or None when another runner holds the lease.
    """
    if tx.dialect == "postgresql":
        # An owner paused inside a transaction holds the row: give up soon rather than wait.
        tx.execute("SET LOCAL lock_timeout = '1s'")
    now = db_now(tx)
    ensure_lease(tx, name, version)
    changed = run_sql(
        tx,
        "UPDATE {schema}.projection_leases SET owner = ?, token = token + 1, expires_at = ?, "
        "renewed_at = ?, state = 'running', events_per_second = 0 "
        "WHERE projection = ? AND version = ? AND expires_at < ?",
        (owner, now + int(seconds * 1e6), now, name, version, now),
    )
    if changed != 1:
        return None
    return int(
        fetch_sql(
            tx,
            "SELECT token FROM {schema}.projection_leases WHERE projection = ? AND version = ?",
            (name, version),
        )[0][0]
    )


def fence(
    tx: Transaction,
    name: str,
    version: int,
    token: int,
    seconds: float,
    *,
    state: str,
    rate: float,
    seen: int,
    error: str | None = None,
) -> None:
    """Check, first thing in a transaction, that this runner still holds the lease, and extend
    it with the owner's report.

    On SQLite the transaction holds the write lock; on PostgreSQL the update locks the lease
    row until the commit, and a takeover waits for it. Either way no takeover can slip between
    this check and the commit.

    Raises:
        LeaseLostError: another runner took the lease over; the transaction must roll back.
    """
    now = db_now(tx)
    changed = run_sql(
        tx,
        "UPDATE {schema}.projection_leases SET expires_at = ?, renewed_at = ?, state = ?, "
        "events_per_second = ?, seen_position = ?, error = ? "
        "WHERE projection = ? AND version = ? AND token = ?",
        (now + int(seconds * 1e6), now, state, rate, seen, error or "", name, version, token),
    )
    if changed != 1:
        raise LeaseLostError(name, version, token)


def release(tx: Transaction, name: str, version: int, token: int) -> None:
    """Give a lease up (a clean stop): another runner may take it at once."""
    run_sql(
        tx,
        "UPDATE {schema}.projection_leases SET expires_at = 0, state = 'stopped', "
        "events_per_second = 0 WHERE projection = ? AND version = ? AND token = ?",
        (name, version, token),
    )


def read_lease(db: SQLDatabase, name: str, version: int) -> LeaseRow | None:
    """A projection version's lease as committed, or None."""
    rows = query(
        db,
        "SELECT owner, token, expires_at, renewed_at, state, events_per_second, seen_position, "
        "error "
        "FROM {schema}.projection_leases WHERE projection = ? AND version = ?",
        (name, version),
    )
    if not rows:
        return None
    owner, token, expires, renewed, state, rate, seen, error = rows[0]
    return LeaseRow(
        str(owner),
        int(token),
        int(expires),
        int(renewed),
        str(state),
        float(rate),
        int(seen),
        str(error),
    )


# -- checkpoints and versions ------------------------------------------------------------------


def _tables_of(projection: ProjectionBase) -> list[str]:
    if not isinstance(projection, Projection):
        return []
    return [physical_table(table, projection.version) for table in projection.tables]


def prepare_version(tx: Transaction, projection: ProjectionBase) -> int:
    """Create a projection version's tables and checkpoint when they do not exist yet.

    Runs in a fenced transaction of the lease holder, so only one runner creates them.

    Returns:
        The version's checkpoint.
    """
    rows = fetch_sql(
        tx,
        "SELECT position FROM {schema}.projection_checkpoints WHERE projection = ? AND version = ?",
        (projection.name, projection.version),
    )
    if rows:
        return int(rows[0][0])
    if isinstance(projection, Projection):
        names = projection.table_names()
        enter_schema(tx)
        for statement in projection.create_statements(tx.dialect):
            tx.execute(render(statement, tx.dialect, names))
    now = db_now(tx)
    run_sql(
        tx,
        "INSERT INTO {schema}.projection_checkpoints (projection, version, position, tables, "
        "created_at, updated_at) VALUES (?, ?, 0, ?, ?, ?)",
        (projection.name, projection.version, ",".join(_tables_of(projection)), now, now),
    )
    return 0


def read_checkpoint(db: SQLDatabase, name: str, version: int) -> int | None:
    """A projection version's committed checkpoint, or None when it was never started."""
    rows = query(
        db,
        "SELECT position FROM {schema}.projection_checkpoints WHERE projection = ? AND version = ?",
        (name, version),
    )
    return int(rows[0][0]) if rows else None


def checkpoint_in(tx: Transaction, name: str, version: int) -> int | None:
    """A projection version's checkpoint as a transaction sees it."""
    rows = fetch_sql(
        tx,
        "SELECT position FROM {schema}.projection_checkpoints WHERE projection = ? AND version = ?",
        (name, version),
    )
    return int(rows[0][0]) if rows else None


def advance(tx: Transaction, name: str, version: int, expected: int, position: int) -> bool:
    """Move a checkpoint from `expected` to `position` (compare-and-set).

    Returns:
        False when the checkpoint is no longer `expected` (a reset, a skip): nothing moved.
    """
    return (
        run_sql(
            tx,
            "UPDATE {schema}.projection_checkpoints SET position = ?, updated_at = ? "
            "WHERE projection = ? AND version = ? AND position = ?",
            (position, db_now(tx), name, version, expected),
        )
        == 1
    )


def active_version(tx: Transaction, name: str) -> int | None:
    """The version queries read, as a transaction sees it (None: none yet)."""
    rows = fetch_sql(
        tx, "SELECT active_version FROM {schema}.projection_versions WHERE projection = ?", (name,)
    )
    return None if not rows or rows[0][0] is None else int(rows[0][0])


def read_active_version(db: SQLDatabase, name: str) -> int | None:
    """The version queries read, as committed (None: none yet)."""
    rows = query(
        db, "SELECT active_version FROM {schema}.projection_versions WHERE projection = ?", (name,)
    )
    return None if not rows or rows[0][0] is None else int(rows[0][0])


def switch_to(tx: Transaction, projection: ProjectionBase) -> list[int]:
    """Make a caught-up version the one queries read, in the caller's (fenced) transaction.

    Each table's view is replaced by one over this version's table, and the tables and rows of
    older versions are dropped: queries see the old version until the commit, the new one
    after it, and never a table half built.

    Returns:
        The older versions retired.
    """
    name = projection.name
    now = db_now(tx)
    tables = list(projection.tables) if isinstance(projection, Projection) else []
    old = fetch_sql(
        tx,
        "SELECT version, tables FROM {schema}.projection_checkpoints "
        "WHERE projection = ? AND version < ?",
        (name, projection.version),
    )
    for table in tables:
        tx.execute(f"DROP VIEW IF EXISTS {{schema}}.{table}")
    for _, physical in old:
        for table in filter(None, str(physical).split(",")):
            tx.execute(f"DROP TABLE IF EXISTS {{schema}}.{table}")
    for table in tables:
        tx.execute(
            f"CREATE VIEW {{schema}}.{table} AS SELECT * FROM "
            f"{{schema}}.{physical_table(table, projection.version)}"
        )
    for statement in (
        "DELETE FROM {schema}.projection_checkpoints WHERE projection = ? AND version < ?",
        "DELETE FROM {schema}.projection_leases WHERE projection = ? AND version < ?",
        "DELETE FROM {schema}.projection_failures WHERE projection = ? AND version < ?",
    ):
        run_sql(tx, statement, (name, projection.version))
    if (
        run_sql(
            tx,
            "UPDATE {schema}.projection_versions SET active_version = ?, switched_at = ? "
            "WHERE projection = ?",
            (projection.version, now, name),
        )
        == 0
    ):
        run_sql(
            tx,
            "INSERT INTO {schema}.projection_versions (projection, active_version, switched_at) "
            "VALUES (?, ?, ?)",
            (name, projection.version, now),
        )
    retired = sorted(int(version) for version, _ in old)
    detail = f"queries read version {projection.version}"
    if retired:
        detail += f"; retired version(s) {', '.join(map(str, retired))}"
    position = checkpoint_in(tx, name, projection.version) or 0
    add_history(tx, name, projection.version, "switch", position, None, detail)
    return retired


# -- history ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One thing that happened to a projection: `failed`, `retry`, `skip`, `reset`, `switch`.

    Attributes:
        version: the projection's version.
        action: what happened.
        global_position: the event concerned (or the checkpoint then).
        event_id: the event's id, where one is concerned.
        detail: the error, or what was done.
        recorded_at: when, in microseconds since the epoch.
    """

    version: int
    action: str
    global_position: int
    event_id: str | None
    detail: str
    recorded_at: int


def add_history(
    tx: Transaction,
    name: str,
    version: int,
    action: str,
    position: int,
    event_id: str | None,
    detail: str,
) -> None:
    """Record something that happened to a projection."""
    run_sql(
        tx,
        "INSERT INTO {schema}.projection_history (projection, version, action, global_position, "
        "event_id, detail, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (name, version, action, position, event_id, detail, db_now(tx)),
    )


def read_history(db: SQLDatabase, name: str, limit: int = 20) -> list[HistoryEntry]:
    """A projection's latest history, oldest first."""
    rows = query(
        db,
        "SELECT version, action, global_position, event_id, detail, recorded_at "
        "FROM {schema}.projection_history WHERE projection = ? ORDER BY id DESC LIMIT ?",
        (name, limit),
    )
    return [
        HistoryEntry(
            int(r[0]),
            str(r[1]),
            int(r[2]),
            None if r[3] is None else str(r[3]),
            str(r[4]),
            int(r[5]),
        )
        for r in reversed(rows)
    ]
