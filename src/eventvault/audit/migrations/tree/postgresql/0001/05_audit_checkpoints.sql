-- Signed checkpoints: tree heads (size, root hash, time, origin) signed with the operator's
-- Ed25519 key, which is never stored here; the public key is kept to check them (verify checks
-- it against the operator's copy). The signature covers the checkpoint's canonical text
-- (docs/audit-format.md), which these columns rebuild.
CREATE TABLE {schema}.audit_checkpoints (
    tree_size  bigint  NOT NULL,
    issued_at  bigint  NOT NULL,
    root_hash  bytea   NOT NULL,
    origin     text    COLLATE "C" NOT NULL,
    key_id     text    COLLATE "C" NOT NULL,
    public_key bytea   NOT NULL,
    signature  bytea   NOT NULL,
    CONSTRAINT audit_checkpoints_pk PRIMARY KEY (tree_size, issued_at),
    CONSTRAINT audit_checkpoints_root_length CHECK (octet_length(root_hash) = 32)
)
