-- One schema per type and version. Registry changes take a transaction-level advisory lock
-- first, so two processes registering at once run one after the other and the second sees
-- the first's version; this index is the last guard should anything bypass the lock.
CREATE UNIQUE INDEX schema_history_version_uq
    ON {schema}.schema_history (event_type, version) WHERE action = 'register'
