-- The event a projection stopped at: its handler raised. The projection applies nothing more
-- until the row is removed by a retry or a skip.
CREATE TABLE {schema}.projection_failures (
    projection      text    COLLATE "C" NOT NULL,
    version         integer NOT NULL,
    global_position bigint  NOT NULL,
    event_id        text    NOT NULL,
    event_type      text    NOT NULL,
    stream_name     text    NOT NULL,
    stream_position bigint  NOT NULL,
    error           text    NOT NULL,
    details         text    NOT NULL,
    failed_at       bigint  NOT NULL,
    CONSTRAINT projection_failures_pk PRIMARY KEY (projection, version)
)
