"""The client side of a PostgreSQL append batch: deciding it, and its parameter arrays."""

from __future__ import annotations

import uuid
from typing import Any, cast

import psycopg

from eventvault.errors import EventVaultError
from eventvault.serialization import GENESIS_HASH
from eventvault.store._append import (
    PendingAppend,
    StoredRow,
    chain,
    resolve_existing_ids,
    version_matches,
    wrong_version,
)
from eventvault.types import AppendResult

__all__ = [
    "Outcome",
    "Row",
    "event_columns",
    "plan",
    "release_quietly",
    "rollback_quietly",
    "stream_columns",
]

Row = tuple[Any, ...]
Outcome = list[AppendResult] | BaseException


def plan(
    requests: list[list[PendingAppend]],
    heads: dict[str, tuple[int | None, bytes]],
    found: dict[uuid.UUID, tuple[str, int, int]],
    first: int,
    recorded_at: int,
) -> tuple[list[Outcome], list[StoredRow], dict[str, tuple[int, int, bytes]]]:
    """Decide every append of a batch before anything is written.

    Returns:
        One outcome per request (its results, or the error it raises), the rows to insert
        (with consecutive positions from `first`), and the new head of every stream written.
    """
    outcomes: list[Outcome] = []
    rows: list[StoredRow] = []
    touched: dict[str, tuple[int, int, bytes]] = {}
    position = first
    for request in requests:
        staged: list[StoredRow] = []
        staged_heads: dict[str, tuple[int | None, bytes]] = {}
        results: list[AppendResult] = []
        next_position = position
        try:
            for append in request:
                name = append.stream_name
                version, previous = (
                    staged_heads.get(name) or heads.get(name) or (None, GENESIS_HASH)
                )
                mine = {i: found[i] for i in append.given_ids if i in found}
                if not version_matches(append.expected_version, version):
                    retry = resolve_existing_ids(append, mine)
                    if retry is None:
                        raise wrong_version(append, version)
                    results.append(retry)
                    continue
                if mine:
                    retry = resolve_existing_ids(append, mine)
                    if retry is not None:
                        results.append(retry)
                        continue
                # Given a first position, chain fills in every global position.
                written = cast(
                    list[StoredRow], chain(append, version, previous, next_position, recorded_at)
                )
                next_position += len(written)
                staged.extend(written)
                last = written[-1]
                staged_heads[name] = (last[1], last[9])
                results.append(AppendResult(last[1], last[2]))
        except EventVaultError as exc:
            outcomes.append(exc)
            continue
        position = next_position
        heads.update(staged_heads)
        rows.extend(staged)
        for row in staged:
            touched[row[0]] = (row[1], row[2], row[9])
        by_id = {row[3]: (row[0], row[1], row[2]) for row in staged}
        for append in request:
            for event in append.events:
                where = by_id.get(event.event_id.bytes) if event.id_given else None
                if where is not None:
                    found[event.event_id] = where
        outcomes.append(results)
    return outcomes, rows, touched


def event_columns(rows: list[StoredRow]) -> list[object]:
    """The parameters of the insert statement: the timestamp, then one array per column."""
    return [
        rows[0][8],
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
        [r[4] for r in rows],
        [r[5] for r in rows],
        [r[6] for r in rows],
        [r[7] for r in rows],
        [r[9] for r in rows],
    ]


def stream_columns(touched: dict[str, tuple[int, int, bytes]]) -> list[object]:
    names = sorted(touched)
    return [
        names,
        [touched[n][0] for n in names],
        [touched[n][1] for n in names],
        [touched[n][2] for n in names],
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
