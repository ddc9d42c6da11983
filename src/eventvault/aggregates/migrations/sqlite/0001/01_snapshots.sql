-- Aggregate snapshots: derived data, an aggregate's state after the event at `version` of its
-- stream. Deleting every row loses nothing but load speed. IF NOT EXISTS: stores written by
-- eventvault 0.1.0 already hold this table, created by its SQLiteSnapshotStore.
CREATE TABLE IF NOT EXISTS snapshots (
    stream_name    TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    schema_version INTEGER NOT NULL,
    state          BLOB    NOT NULL,
    recorded_at    INTEGER NOT NULL,
    taken_at       INTEGER NOT NULL,
    CONSTRAINT snapshots_pk PRIMARY KEY (stream_name, version)
) WITHOUT ROWID
