-- Aggregate snapshots (eventvault.aggregates): derived data, an aggregate's state after the
-- event at `version` of its stream. Deleting every row loses nothing but load speed.
CREATE TABLE {schema}.snapshots (
    stream_name    text    COLLATE "C" NOT NULL,
    version        bigint  NOT NULL,
    schema_version integer NOT NULL,
    state          bytea   NOT NULL,
    recorded_at    bigint  NOT NULL,
    taken_at       bigint  NOT NULL,
    CONSTRAINT snapshots_pk PRIMARY KEY (stream_name, version)
);
