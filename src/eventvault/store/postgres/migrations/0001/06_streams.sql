-- One row per stream with events: its version and the hash its next event chains to. Writers
-- lock the rows of their streams (in name order) to serialize appends to one stream.
CREATE TABLE {schema}.streams (
    stream_name          text   COLLATE "C" NOT NULL,
    version              bigint NOT NULL,
    last_global_position bigint NOT NULL,
    last_hash            bytea  NOT NULL,
    CONSTRAINT streams_pk PRIMARY KEY (stream_name),
    CONSTRAINT streams_version_nonnegative CHECK (version >= 0)
);
