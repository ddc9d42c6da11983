-- The log. One row per event; global_position is the rowid, assigned in commit order by the
-- single writer that holds SQLite's write lock, so readers never see a position filled in later.
CREATE TABLE events (
    global_position INTEGER PRIMARY KEY,
    stream_name     TEXT    NOT NULL,
    stream_position INTEGER NOT NULL,
    event_id        BLOB    NOT NULL,
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL,
    data            BLOB    NOT NULL,
    metadata        BLOB    NOT NULL,
    recorded_at     INTEGER NOT NULL,
    hash            BLOB    NOT NULL,
    CONSTRAINT events_stream_position_nonnegative CHECK (stream_position >= 0),
    CONSTRAINT events_event_id_length CHECK (length(event_id) = 16),
    CONSTRAINT events_hash_length CHECK (length(hash) = 32)
);
