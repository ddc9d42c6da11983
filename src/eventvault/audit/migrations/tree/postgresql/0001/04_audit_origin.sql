-- The store's identity in its checkpoints: a UUID made when the tree is first used, so that a
-- checkpoint names the log it signs. One row.
CREATE TABLE {schema}.audit_origin (
    id         bigint  NOT NULL,
    origin     text    COLLATE "C" NOT NULL,
    created_at bigint  NOT NULL,
    CONSTRAINT audit_origin_pk PRIMARY KEY (id),
    CONSTRAINT audit_origin_one_row CHECK (id = 1)
)
