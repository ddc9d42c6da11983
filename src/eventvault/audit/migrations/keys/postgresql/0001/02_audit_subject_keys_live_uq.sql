-- A subject has at most one key that is not forgotten: sealing uses it, or makes one.
CREATE UNIQUE INDEX audit_subject_keys_live_uq ON {schema}.audit_subject_keys (subject) WHERE secret IS NOT NULL
