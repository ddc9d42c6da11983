-- The version of each projection that queries read: its views point at that version's tables.
-- Switched in one transaction with the views when a newer version has caught up.
CREATE TABLE {schema}.projection_versions (
    projection     text    COLLATE "C" NOT NULL,
    active_version integer,
    switched_at    bigint  NOT NULL,
    CONSTRAINT projection_versions_pk PRIMARY KEY (projection)
)
