-- How far each version of each projection has applied the log: the global position of the last
-- event applied (0: none). Written in the same transaction as the read model's rows, so the two
-- never disagree (exactly-once effects). `tables` lists the version's physical tables, so that a
-- later version can drop them when it takes over.
CREATE TABLE {schema}.projection_checkpoints (
    projection text    COLLATE "C" NOT NULL,
    version    integer NOT NULL,
    position   bigint  NOT NULL,
    tables     text    NOT NULL,
    created_at bigint  NOT NULL,
    updated_at bigint  NOT NULL,
    CONSTRAINT projection_checkpoints_pk PRIMARY KEY (projection, version)
)
