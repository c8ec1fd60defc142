-- Credentials that reach the API: service tokens (operators, gateways), tenant API keys,
-- tenant users. Tokens and keys are stored only as hashes.
CREATE TABLE access_tokens (
    id            TEXT PRIMARY KEY NOT NULL,
    scope         TEXT NOT NULL CHECK (scope IN ('operator', 'gateway')),
    name          TEXT NOT NULL,
    token_hash    TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    last_used_at  TIMESTAMP,
    CONSTRAINT access_tokens_name_key UNIQUE (name),
    CONSTRAINT access_tokens_token_hash_key UNIQUE (token_hash)
);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    key_hash      TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    last_used_at  TIMESTAMP,
    expires_at    TIMESTAMP,
    revoked_at    TIMESTAMP,
    CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash)
);
CREATE INDEX api_keys_tenant_id_idx ON api_keys (tenant_id);

CREATE TABLE tenant_users (
    id             TEXT PRIMARY KEY NOT NULL,
    tenant_id      TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email          TEXT NOT NULL,
    password_hash  TEXT,
    role           TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL,
    -- Also serves as the index on tenant_id.
    CONSTRAINT tenant_users_tenant_id_email_key UNIQUE (tenant_id, email)
);
