-- The version of each projection that queries read: its views point at that version's tables.
-- Switched in one transaction with the views when a newer version has caught up.
CREATE TABLE projection_versions (
    projection     TEXT    NOT NULL,
    active_version INTEGER,
    switched_at    INTEGER NOT NULL,
    CONSTRAINT projection_versions_pk PRIMARY KEY (projection)
) WITHOUT ROWID
