-- The event a projection stopped at: its handler raised. The projection applies nothing more
-- until the row is removed by a retry or a skip.
CREATE TABLE projection_failures (
    projection      TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    global_position INTEGER NOT NULL,
    event_id        TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    stream_name     TEXT    NOT NULL,
    stream_position INTEGER NOT NULL,
    error           TEXT    NOT NULL,
    details         TEXT    NOT NULL,
    failed_at       INTEGER NOT NULL,
    CONSTRAINT projection_failures_pk PRIMARY KEY (projection, version)
) WITHOUT ROWID
