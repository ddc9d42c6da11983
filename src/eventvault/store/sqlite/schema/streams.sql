-- One row per stream with events: its version and the hash its next event chains to, so an
-- append checks its expected version and extends the hash chain with one primary-key lookup.
CREATE TABLE streams (
    stream_name          TEXT    NOT NULL,
    version              INTEGER NOT NULL,
    last_global_position INTEGER NOT NULL,
    last_hash            BLOB    NOT NULL,
    CONSTRAINT streams_pk PRIMARY KEY (stream_name)
) WITHOUT ROWID;
