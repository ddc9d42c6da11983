-- One schema per type and version: two processes that register the same version at once
-- cannot both commit (the writer's lock already serializes them; this is the last guard).
CREATE UNIQUE INDEX schema_history_version_uq
    ON schema_history (event_type, version) WHERE action = 'register'
