-- Bearer tokens of the HTTP server (eventvault token create | list | revoke). The secret is
-- never stored: only its SHA-256. A token is found by its public id, then its hash compared.
CREATE TABLE server_tokens (
    token_id TEXT NOT NULL,
    name TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    scopes TEXT NOT NULL,
    prefixes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    CONSTRAINT server_tokens_pk PRIMARY KEY (token_id)
)
