-- The keys that seal personal fields (crypto-shredding, docs/removal.md): one AES-256 key per
-- subject at a time, named by key_id in every field it sealed. Forgetting a subject sets secret
-- to NULL: the fields sealed with it can never be read again, while the events, their bytes and
-- their hashes stay as they were. forgotten_by names the SubjectForgotten record in $removals.
CREATE TABLE audit_subject_keys (
    key_id       TEXT    NOT NULL,
    subject      TEXT    NOT NULL,
    secret       BLOB,
    created_at   INTEGER NOT NULL,
    forgotten_at INTEGER,
    forgotten_by INTEGER,
    CONSTRAINT audit_subject_keys_pk PRIMARY KEY (key_id),
    CONSTRAINT audit_subject_keys_secret_length CHECK (secret IS NULL OR length(secret) = 32),
    CONSTRAINT audit_subject_keys_forgotten CHECK ((secret IS NULL) = (forgotten_at IS NOT NULL))
)
