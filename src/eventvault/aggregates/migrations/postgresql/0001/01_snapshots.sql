-- Aggregate snapshots: derived data, an aggregate's state after the event at `version` of its
-- stream. Deleting every row loses nothing but load speed. IF NOT EXISTS: schemas created by
-- eventvault 0.1.0 already hold this table, created with the store's own tables.
CREATE TABLE IF NOT EXISTS {schema}.snapshots (
    stream_name    text    COLLATE "C" NOT NULL,
    version        bigint  NOT NULL,
    schema_version integer NOT NULL,
    state          bytea   NOT NULL,
    recorded_at    bigint  NOT NULL,
    taken_at       bigint  NOT NULL,
    CONSTRAINT snapshots_pk PRIMARY KEY (stream_name, version)
);
