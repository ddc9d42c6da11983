-- What happened to each projection and who did it: failures, retries, skips (with the event
-- skipped), resets and version switches, oldest first.
CREATE TABLE projection_history (
    id              INTEGER PRIMARY KEY,
    projection      TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    action          TEXT    NOT NULL,
    global_position INTEGER NOT NULL,
    event_id        TEXT,
    detail          TEXT    NOT NULL,
    recorded_at     INTEGER NOT NULL
)
