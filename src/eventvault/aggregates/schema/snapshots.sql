CREATE TABLE IF NOT EXISTS snapshots (
    stream_name    TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    schema_version INTEGER NOT NULL,
    state          BLOB    NOT NULL,
    recorded_at    INTEGER NOT NULL,
    taken_at       INTEGER NOT NULL,
    CONSTRAINT snapshots_pk PRIMARY KEY (stream_name, version)
) WITHOUT ROWID
