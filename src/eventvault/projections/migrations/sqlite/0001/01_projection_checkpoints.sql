-- How far each version of each projection has applied the log: the global position of the last
-- event applied (0: none). Written in the same transaction as the read model's rows, so the two
-- never disagree (exactly-once effects). `tables` lists the version's physical tables, so that a
-- later version can drop them when it takes over.
CREATE TABLE projection_checkpoints (
    projection TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    position   INTEGER NOT NULL,
    tables     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CONSTRAINT projection_checkpoints_pk PRIMARY KEY (projection, version)
) WITHOUT ROWID
