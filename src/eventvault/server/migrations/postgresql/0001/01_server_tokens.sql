-- Bearer tokens of the HTTP server (eventvault token create | list | revoke). The secret is
-- never stored: only its SHA-256. A token is found by its public id, then its hash compared.
CREATE TABLE {schema}.server_tokens (
    token_id text NOT NULL,
    name text NOT NULL,
    secret_sha256 text NOT NULL,
    scopes text NOT NULL,
    prefixes text NOT NULL,
    created_at bigint NOT NULL,
    revoked_at bigint,
    CONSTRAINT server_tokens_pk PRIMARY KEY (token_id)
)
