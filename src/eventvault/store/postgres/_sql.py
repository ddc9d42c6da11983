"""Every SQL statement of the PostgreSQL engine, with the store's schema filled in once."""

from __future__ import annotations

from typing import Final

from eventvault.store._removal import statements as removal_statements
from eventvault.store.postgres._config import quote_schema
from eventvault.store.seam import with_schema

__all__ = ["COPY_TYPES", "Statements"]


class Statements:
    """Every SQL statement of one store, with its schema name filled in once."""

    def __init__(self, schema: str) -> None:
        s = quote_schema(schema)
        columns = (
            "stream_name, stream_position, global_position, uuid_send(event_id), event_type, "
            "schema_version, data, metadata, recorded_at, hash"
        )
        self.reserve = f"SELECT {s}.reserve_positions(%s)"
        self.release = f"SELECT {s}.release_positions(%s, %s)"
        self.lock_streams = f"SELECT {s}.lock_streams(%s::text[])"
        self.stream_heads = (
            f"SELECT stream_name, version, last_hash FROM {s}.streams "
            "WHERE stream_name = ANY(%s::text[])"
        )
        self.find_ids = (
            f"SELECT uuid_send(event_id), stream_name, stream_position, global_position "
            f"FROM {s}.events WHERE event_id = ANY(%s::uuid[])"
        )
        self.insert_events = (
            f"INSERT INTO {s}.events (stream_name, stream_position, global_position, event_id, "
            "event_type, schema_version, data, metadata, recorded_at, hash) "
            "SELECT u.n, u.sp, u.gp, encode(u.id, 'hex')::uuid, u.t, u.v, u.d, u.m, %s::int8, u.h "
            "FROM unnest(%s::text[], %s::int8[], %s::int8[], %s::bytea[], %s::text[], "
            "%s::int4[], %s::bytea[], %s::bytea[], %s::bytea[]) AS u(n, sp, gp, id, t, v, d, m, h)"
        )
        self.upsert_streams = (
            f"INSERT INTO {s}.streams (stream_name, version, last_global_position, last_hash) "
            "SELECT * FROM unnest(%s::text[], %s::int8[], %s::int8[], %s::bytea[]) "
            "ON CONFLICT ON CONSTRAINT streams_pk DO UPDATE SET version = EXCLUDED.version, "
            "last_global_position = EXCLUDED.last_global_position, "
            "last_hash = EXCLUDED.last_hash"
        )
        # Binary parameters (%b): arrays of bytes go over the wire without escaping.
        self.reserve_in_transaction = (
            f"SELECT first_position, horizon::text FROM {s}.reserve_positions_in_transaction(%s)"
        )
        self.insert_events_in_transaction = (
            f"INSERT INTO {s}.events (tx_id, stream_name, stream_position, global_position, "
            "event_id, event_type, schema_version, data, metadata, recorded_at, hash) "
            "SELECT %s::text::xid8, u.n, u.sp, u.gp, encode(u.id, 'hex')::uuid, u.t, u.v, u.d, "
            "u.m, %s::int8, u.h "
            "FROM unnest(%s::text[], %s::int8[], %s::int8[], %s::bytea[], %s::text[], "
            "%s::int4[], %s::bytea[], %s::bytea[], %s::bytea[]) AS u(n, sp, gp, id, t, v, d, m, h)"
        )
        self.append_events = (
            f"SELECT {s}.append_events(%b::int8, %b::text[], %b::int8[], %b::uuid[], "
            "%b::text[], %b::int4[], %b::bytea[], %b::bytea[], %b::bytea[], %b::text)"
        )
        self.notify = "SELECT pg_notify(%s, %s)"
        self.stored = f"SELECT EXISTS (SELECT 1 FROM {s}.events WHERE global_position = %s)"
        self.position_of_id = f"SELECT global_position FROM {s}.events WHERE event_id = %s"
        horizon = "(SELECT pg_snapshot_xmin(pg_current_snapshot()))"
        # Removed events stay in the table (their hashes are kept) and are left out of reads:
        # of the log by their removed_by, of a stream by where its removals end (they always
        # take a prefix of it), one lookup in stream_metadata keeping the index range scan.
        self.read_forward = (
            f"SELECT {columns}, tx_id < {horizon} FROM {s}.events WHERE global_position > %s "
            "AND removed_by IS NULL"
        )
        self.read_raw_forward = (
            f"SELECT {columns}, tx_id < {horizon}, removed_by FROM {s}.events "
            "WHERE global_position > %s ORDER BY global_position LIMIT %s"
        )
        self.event_by_id = f"SELECT {columns}, removed_by FROM {s}.events WHERE event_id = %s"
        self.event_at = (
            f"SELECT {columns}, removed_by FROM {s}.events "
            "WHERE stream_name = %s AND stream_position = %s"
        )
        self.read_hashes = (
            f"SELECT global_position, hash, tx_id < {horizon} FROM {s}.events "
            "WHERE global_position > %s ORDER BY global_position LIMIT %s"
        )
        self.read_backward = (
            f"SELECT {columns} FROM {s}.events WHERE global_position <= %s AND removed_by IS NULL"
        )
        stream_start = (
            f"coalesce((SELECT removed_before FROM {s}.stream_metadata "
            "WHERE stream_name = %(name)s), 0)"
        )
        self.read_stream_forward = (
            f"SELECT {columns} FROM {s}.events WHERE stream_name = %(name)s "
            f"AND stream_position >= greatest(%(bound)s, {stream_start}) "
            "ORDER BY stream_position LIMIT %(limit)s"
        )
        self.read_stream_backward = (
            f"SELECT {columns} FROM {s}.events WHERE stream_name = %(name)s "
            f"AND stream_position <= %(bound)s AND stream_position >= {stream_start} "
            "ORDER BY stream_position DESC LIMIT %(limit)s"
        )
        self.heads = (
            f"SELECT coalesce((SELECT global_position FROM {s}.events WHERE tx_id < {horizon} "
            "ORDER BY global_position DESC LIMIT 1), 0), "
            f"coalesce((SELECT max(global_position) FROM {s}.events), 0)"
        )
        self.horizon = (
            f"SELECT {horizon}::text, coalesce((SELECT global_position FROM {s}.events "
            f"WHERE tx_id < {horizon} ORDER BY global_position DESC LIMIT 1), 0), "
            f"coalesce((SELECT max(global_position) FROM {s}.events), 0)"
        )
        self.first_beyond = (
            f"SELECT tx_id::text FROM {s}.events WHERE global_position > %s "
            "ORDER BY global_position LIMIT 1"
        )
        self.list_streams = (
            f"SELECT s.stream_name, s.version, s.last_global_position FROM {s}.streams AS s "
            f"LEFT JOIN {s}.stream_metadata AS m ON m.stream_name = s.stream_name "
            "WHERE s.stream_name > %s AND s.version >= coalesce(m.removed_before, 0) "
            "ORDER BY s.stream_name LIMIT %s"
        )
        self.insert_stream_metadata = with_schema(
            removal_statements("postgresql").insert_metadata, s
        )
        self.mark_imported = (
            f"UPDATE {s}.events AS e SET removed_by = u.r "
            "FROM unnest(%s::int8[], %s::int8[]) AS u(p, r) WHERE e.global_position = u.p"
        )
        self.stream_version = f"SELECT version FROM {s}.streams WHERE stream_name = %s"
        self.stats = (
            f"SELECT (SELECT count(*) FROM {s}.events), (SELECT count(*) FROM {s}.streams), "
            f"(SELECT recorded_at FROM {s}.events ORDER BY global_position LIMIT 1), "
            f"(SELECT recorded_at FROM {s}.events ORDER BY global_position DESC LIMIT 1)"
        )
        self.lock_log = f"SELECT pg_advisory_lock({s}.position_lock_key())"
        self.unlock_log = f"SELECT pg_advisory_unlock({s}.position_lock_key())"
        self.max_position = f"SELECT max(global_position) FROM {s}.events"
        self.copy_events = (
            f"COPY {s}.events (stream_name, stream_position, global_position, event_id, "
            "event_type, schema_version, data, metadata, recorded_at, hash) "
            "FROM STDIN (FORMAT BINARY)"
        )
        sequence = f"{s}.events_global_position_seq"
        self.advance_sequence = (
            f"SELECT setval('{sequence}', greatest(%s, (SELECT last_value FROM {sequence})))"
        )


COPY_TYPES: Final = [
    "text",
    "int8",
    "int8",
    "uuid",
    "text",
    "int4",
    "bytea",
    "bytea",
    "int8",
    "bytea",
]
