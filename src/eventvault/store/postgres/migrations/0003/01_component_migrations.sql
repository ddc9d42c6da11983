-- The migrations applied to the tables of each component: the tables features keep beside the
-- events (snapshots, projections, the schema registry, ...), one row per version applied. The
-- store's own tables keep their record in schema_version.
CREATE TABLE {schema}.component_migrations (
    component  text        COLLATE "C" NOT NULL,
    version    integer     NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT component_migrations_pk PRIMARY KEY (component, version),
    CONSTRAINT component_migrations_version_positive CHECK (version > 0)
);
