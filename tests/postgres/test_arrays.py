"""The binary arrays of the one-statement append read back on the server as what was sent."""

from __future__ import annotations

import uuid

import psycopg

from eventvault.serialization import MAX_SCHEMA_VERSION
from eventvault.store._append import StoredRow
from eventvault.store.postgres._arrays import ADAPTERS, append_arguments


def _row(name: str, position: int, version: int, data: bytes) -> StoredRow:
    event_id = uuid.uuid4().bytes
    return StoredRow(
        name, position, 0, event_id, f"Type-{name}", version, data, b"{}", 1, bytes(32)
    )


def test_every_column_arrives_as_sent(server_url: str) -> None:
    rows = [
        _row("kundenkonto-ü-42", 0, 1, b'{"a":1}'),
        _row("s" * 200, 2**62, MAX_SCHEMA_VERSION, b'{"emoji":"\xf0\x9f\x8e\x89"}'),
        _row("x", 7, 3, b"{" + b'"k":"' + b"v" * 100_000 + b'"}'),
    ]
    arguments = append_arguments(rows)
    with psycopg.connect(server_url, autocommit=True, context=ADAPTERS) as conn:
        row = conn.execute(
            "SELECT %b::int8, %b::text[], %b::int8[], %b::uuid[], %b::text[], %b::int4[], "
            "%b::bytea[], %b::bytea[], %b::bytea[]",
            arguments,
        ).fetchone()
    assert row is not None
    assert row[0] == 1
    assert row[1] == [r[0] for r in rows]
    assert row[2] == [r[1] for r in rows]
    assert row[3] == [uuid.UUID(bytes=r[3]) for r in rows]
    assert row[4] == [r[4] for r in rows]
    assert row[5] == [r[5] for r in rows]
    assert row[6] == [r[6] for r in rows]
    assert row[7] == [r[7] for r in rows]
    assert row[8] == [r[9] for r in rows]


def test_the_arrays_are_one_dimensional_with_their_element_types(server_url: str) -> None:
    arguments = append_arguments([_row("a", 1, 2, b"{}")])
    with psycopg.connect(server_url, autocommit=True, context=ADAPTERS) as conn:
        row = conn.execute(
            "SELECT array_ndims(%b::text[]), pg_typeof(%b), pg_typeof(%b), pg_typeof(%b)",
            [arguments[1], arguments[2], arguments[3], arguments[6]],
        ).fetchone()
    assert row == (1, "bigint[]", "uuid[]", "bytea[]")
