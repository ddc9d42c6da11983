-- The store's identity in its checkpoints: a UUID made when the tree is first used, so that a
-- checkpoint names the log it signs. One row.
CREATE TABLE audit_origin (
    id         INTEGER NOT NULL,
    origin     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    CONSTRAINT audit_origin_pk PRIMARY KEY (id),
    CONSTRAINT audit_origin_one_row CHECK (id = 1)
)
