-- The migrations applied to this schema, one row each; the highest version is the schema's.
CREATE TABLE {schema}.schema_version (
    version    integer     NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT schema_version_pk PRIMARY KEY (version),
    CONSTRAINT schema_version_positive CHECK (version > 0)
);
