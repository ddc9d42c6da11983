-- One row per stream with events, written once, by the append that creates the stream: the
-- registry that lists streams (and the place for stream-level settings). A stream's version and
-- last hash are read from its last event through events_stream_uq, so an append to an existing
-- stream writes no row here.
CREATE TABLE streams (
    stream_name           TEXT    NOT NULL,
    first_global_position INTEGER NOT NULL,
    CONSTRAINT streams_pk PRIMARY KEY (stream_name)
) WITHOUT ROWID;
