-- Signed checkpoints: tree heads (size, root hash, time, origin) signed with the operator's
-- Ed25519 key, which is never stored here; the public key is kept to check them (verify checks
-- it against the operator's copy). The signature covers the checkpoint's canonical text
-- (docs/audit-format.md), which these columns rebuild.
CREATE TABLE audit_checkpoints (
    tree_size  INTEGER NOT NULL,
    issued_at  INTEGER NOT NULL,
    root_hash  BLOB    NOT NULL,
    origin     TEXT    NOT NULL,
    key_id     TEXT    NOT NULL,
    public_key BLOB    NOT NULL,
    signature  BLOB    NOT NULL,
    CONSTRAINT audit_checkpoints_pk PRIMARY KEY (tree_size, issued_at),
    CONSTRAINT audit_checkpoints_root_length CHECK (length(root_hash) = 32)
)
