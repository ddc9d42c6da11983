-- Ownership: the one runner that may apply events to a version of a projection. `token` grows by
-- one at every takeover and is checked in the transaction of every batch (a fencing token): a
-- runner that lost its lease while paused cannot commit. `expires_at` (microseconds) only says
-- when another runner may take over. The state, rate and position seen are the owner's report,
-- for status, with the last error it met that is not an event's (a lost connection, a table
-- that cannot be created).
CREATE TABLE projection_leases (
    projection        TEXT    NOT NULL,
    version           INTEGER NOT NULL,
    owner             TEXT    NOT NULL,
    token             INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,
    renewed_at        INTEGER NOT NULL,
    state             TEXT    NOT NULL,
    events_per_second REAL    NOT NULL,
    seen_position     INTEGER NOT NULL,
    error             TEXT    NOT NULL,
    CONSTRAINT projection_leases_pk PRIMARY KEY (projection, version)
) WITHOUT ROWID
