-- The log. One row per event. tx_id is the id of the transaction that wrote the row: a reader
-- delivers a row only once tx_id is below its snapshot's xmin, that is once every transaction
-- that might hold a lower global position has finished. data and metadata are the exact JSON
-- bytes the hash was computed over (bytea, never jsonb, which would reorder keys). Names use
-- the "C" collation: streams list in code point order, as on every other engine.
CREATE TABLE {schema}.events (
    global_position bigint  NOT NULL,
    tx_id           xid8    NOT NULL DEFAULT pg_current_xact_id(),
    stream_name     text    COLLATE "C" NOT NULL,
    stream_position bigint  NOT NULL,
    event_id        uuid    NOT NULL,
    event_type      text    COLLATE "C" NOT NULL,
    schema_version  integer NOT NULL,
    data            bytea   NOT NULL,
    metadata        bytea   NOT NULL,
    recorded_at     bigint  NOT NULL,
    hash            bytea   NOT NULL,
    CONSTRAINT events_pk PRIMARY KEY (global_position),
    CONSTRAINT events_global_position_positive CHECK (global_position > 0),
    CONSTRAINT events_stream_position_nonnegative CHECK (stream_position >= 0),
    CONSTRAINT events_schema_version_positive CHECK (schema_version > 0),
    CONSTRAINT events_hash_length CHECK (octet_length(hash) = 32)
);
