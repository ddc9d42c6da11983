-- Ownership: the one runner that may apply events to a version of a projection. `token` grows by
-- one at every takeover and is checked in the transaction of every batch (a fencing token): a
-- runner that lost its lease while paused cannot commit. `expires_at` (microseconds, the
-- server's clock) only says when another runner may take over. The state, rate and position
-- seen are the owner's report, for status, with the last error it met that is not an event's
-- (a lost connection, a table that cannot be created).
CREATE TABLE {schema}.projection_leases (
    projection        text             COLLATE "C" NOT NULL,
    version           integer          NOT NULL,
    owner             text             NOT NULL,
    token             bigint           NOT NULL,
    expires_at        bigint           NOT NULL,
    renewed_at        bigint           NOT NULL,
    state             text             NOT NULL,
    events_per_second double precision NOT NULL,
    seen_position     bigint           NOT NULL,
    error             text             NOT NULL,
    CONSTRAINT projection_leases_pk PRIMARY KEY (projection, version)
)
