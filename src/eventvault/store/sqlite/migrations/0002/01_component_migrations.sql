-- The record of every migration applied, per component: the store's own tables as
-- `eventvault`, and the tables features keep beside the events (snapshots, projections, ...).
-- Applied by whichever connection holds SQLite's write lock, so concurrent openers serialize.
CREATE TABLE IF NOT EXISTS component_migrations (
    component  TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    applied_at INTEGER NOT NULL,
    CONSTRAINT component_migrations_pk PRIMARY KEY (component, version)
) WITHOUT ROWID
