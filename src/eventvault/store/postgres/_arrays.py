"""The parameters of the one-statement append, as PostgreSQL binary arrays built in one pass.

psycopg adapts a Python list by inspecting its elements and dumping each one through its own
adapter, in Python. For the nine short arrays of an append that was a large part of the client's
work per commit, which on a busy client is what limits how many appends a second one process
commits. The wire format of a one-dimensional array without NULLs is simple (see PostgreSQL's
`array_recv`): a header of five 32-bit integers (dimensions, has-NULLs flag, element type,
length, lower bound), then each element as a 32-bit length and its bytes. `append_arguments`
writes that directly; `ADAPTERS` passes the result through psycopg untouched.
"""

from __future__ import annotations

import struct
from typing import ClassVar

import psycopg
from psycopg.adapt import AdaptersMap, Dumper
from psycopg.pq import Format

from eventvault.store._append import StoredRow

__all__ = ["ADAPTERS", "BinaryArray", "append_arguments"]

_header = struct.Struct("!iiiii").pack
_length = struct.Struct("!i").pack


class BinaryArray:
    """A one-dimensional array already in PostgreSQL's binary format; each subclass is one
    array type (its `oid`) and carries the oid of its elements."""

    __slots__ = ("data",)
    oid: ClassVar[int]
    element_oid: ClassVar[int]

    def __init__(self, data: bytes) -> None:
        self.data = data


def _array_type(name: str, oid: int, element_oid: int) -> type[BinaryArray]:
    return type(name, (BinaryArray,), {"__slots__": (), "oid": oid, "element_oid": element_oid})


# pg_type oids of the arrays and of their elements.
_TextArray = _array_type("TextArray", 1009, 25)
_Int8Array = _array_type("Int8Array", 1016, 20)
_Int4Array = _array_type("Int4Array", 1007, 23)
_UuidArray = _array_type("UuidArray", 2951, 2950)
_ByteaArray = _array_type("ByteaArray", 1001, 17)


def _variable(kind: type[BinaryArray], values: list[bytes]) -> BinaryArray:
    parts = [_header(1, 0, kind.element_oid, len(values), 1)]
    for value in values:
        parts.append(_length(len(value)))
        parts.append(value)
    return kind(b"".join(parts))


def _fixed(kind: type[BinaryArray], code: str, size: int, values: list[int]) -> BinaryArray:
    count = len(values)
    items = [size, 0] * count
    items[1::2] = values
    header = _header(1, 0, kind.element_oid, count, 1)
    return kind(header + struct.pack(f"!{('i' + code) * count}", *items))


def append_arguments(rows: list[StoredRow]) -> list[object]:
    """The arguments of `append_events` for planned rows (their global positions are left
    out: the server reserves them): the timestamp, then one array per column."""
    return [
        rows[0].recorded_at,
        _variable(_TextArray, [r.stream_name.encode() for r in rows]),
        _fixed(_Int8Array, "q", 8, [r.stream_position for r in rows]),
        _variable(_UuidArray, [r.event_id for r in rows]),
        _variable(_TextArray, [r.event_type.encode() for r in rows]),
        _fixed(_Int4Array, "i", 4, [r.schema_version for r in rows]),
        _variable(_ByteaArray, [r.data for r in rows]),
        _variable(_ByteaArray, [r.metadata for r in rows]),
        _variable(_ByteaArray, [r.hash for r in rows]),
    ]


class _BinaryArrayDumper(Dumper):
    """Sends a `BinaryArray` as it is, in binary format; subclassed once per array type."""

    format = Format.BINARY

    def dump(self, obj: BinaryArray) -> bytes:
        return obj.data


ADAPTERS: AdaptersMap = AdaptersMap(psycopg.adapters)
"""psycopg's default adapters plus dumpers for the `BinaryArray` kinds: the pool's connections
use it."""
for _kind in (_TextArray, _Int8Array, _Int4Array, _UuidArray, _ByteaArray):
    ADAPTERS.register_dumper(
        _kind, type(f"{_kind.__name__}Dumper", (_BinaryArrayDumper,), {"oid": _kind.oid})
    )
