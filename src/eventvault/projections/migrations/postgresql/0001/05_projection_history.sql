-- What happened to each projection and who did it: failures, retries, skips (with the event
-- skipped), resets and version switches, oldest first.
CREATE TABLE {schema}.projection_history (
    id              bigint  GENERATED ALWAYS AS IDENTITY,
    projection      text    COLLATE "C" NOT NULL,
    version         integer NOT NULL,
    action          text    NOT NULL,
    global_position bigint  NOT NULL,
    event_id        text,
    detail          text    NOT NULL,
    recorded_at     bigint  NOT NULL,
    CONSTRAINT projection_history_pk PRIMARY KEY (id)
)
