"""The client side of a PostgreSQL append batch: its parameter arrays, and ending it quietly."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg

from eventvault.store._append import StoredRow, StreamHead

__all__ = [
    "Row",
    "event_columns",
    "release_quietly",
    "rollback_quietly",
    "stream_columns",
]

Row = tuple[Any, ...]


def event_columns(rows: list[StoredRow]) -> list[object]:
    """The parameters of the insert statement: the timestamp, then one array per column."""
    return [
        rows[0].recorded_at,
        [r.stream_name for r in rows],
        [r.stream_position for r in rows],
        [r.global_position for r in rows],
        [r.event_id for r in rows],
        [r.event_type for r in rows],
        [r.schema_version for r in rows],
        [r.data for r in rows],
        [r.metadata for r in rows],
        [r.hash for r in rows],
    ]


def stream_columns(heads: Mapping[str, StreamHead]) -> list[object]:
    """The parameters of the streams upsert: one array per column, in stream name order."""
    names = sorted(heads)
    return [
        names,
        [heads[n].version for n in names],
        [heads[n].global_position for n in names],
        [heads[n].hash for n in names],
    ]


def rollback_quietly(conn: psycopg.Connection[Row]) -> None:
    """End a failed transaction; a dead connection is left for the pool to discard."""
    if conn.closed:
        return
    try:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.execute("ROLLBACK")
    except psycopg.Error:
        return


def release_quietly(conn: psycopg.Connection[Row], query: str, first: int, last: int) -> None:
    """Give back the positions of a transaction that rolled back (a best effort)."""
    if conn.closed:
        return
    try:
        conn.execute(query, (first, last))
    except psycopg.Error:
        return
