-- Tenant users and operator users with passwords, their refresh tokens, and the login throttle.
-- Passwords are stored as argon2id PHC strings; refresh tokens and invite tokens only as SHA-256
-- hashes.
ALTER TABLE tenant_users ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE tenant_users ADD COLUMN last_login_at TIMESTAMP;
ALTER TABLE tenant_users ADD COLUMN password_changed_at TIMESTAMP;
ALTER TABLE tenant_users ADD COLUMN invite_hash TEXT;
ALTER TABLE tenant_users ADD COLUMN invite_expires_at TIMESTAMP;
CREATE UNIQUE INDEX tenant_users_invite_hash_key ON tenant_users (invite_hash);

CREATE TABLE operator_users (
    id                   TEXT PRIMARY KEY NOT NULL,
    email                TEXT NOT NULL,
    password_hash        TEXT NOT NULL,
    disabled             BOOLEAN NOT NULL DEFAULT FALSE,
    created_at           TIMESTAMP NOT NULL,
    updated_at           TIMESTAMP NOT NULL,
    last_login_at        TIMESTAMP,
    password_changed_at  TIMESTAMP,
    CONSTRAINT operator_users_email_key UNIQUE (email)
);

-- One row per issued refresh token. Tokens of one login form a family: each use marks the token
-- used and issues its successor; presenting a used token again revokes the whole family.
CREATE TABLE refresh_tokens (
    id                TEXT PRIMARY KEY NOT NULL,
    token_hash        TEXT NOT NULL,
    family_id         TEXT NOT NULL,
    tenant_user_id    TEXT REFERENCES tenant_users (id) ON DELETE CASCADE,
    operator_user_id  TEXT REFERENCES operator_users (id) ON DELETE CASCADE,
    created_at        TIMESTAMP NOT NULL,
    expires_at        TIMESTAMP NOT NULL,
    used_at           TIMESTAMP,
    revoked_at        TIMESTAMP,
    CONSTRAINT refresh_tokens_token_hash_key UNIQUE (token_hash),
    CONSTRAINT refresh_tokens_one_owner CHECK (
        (tenant_user_id IS NULL) <> (operator_user_id IS NULL)
    )
);
CREATE INDEX refresh_tokens_tenant_user_id_idx ON refresh_tokens (tenant_user_id);
CREATE INDEX refresh_tokens_operator_user_id_idx ON refresh_tokens (operator_user_id);
CREATE INDEX refresh_tokens_family_id_idx ON refresh_tokens (family_id);

-- Failed-login counters, per account (a hash of tenant and email) and per client address, shared
-- by every replica.
CREATE TABLE login_throttle (
    throttle_key   TEXT PRIMARY KEY NOT NULL,
    failures       INTEGER NOT NULL,
    locked_until   TIMESTAMP,
    updated_at     TIMESTAMP NOT NULL
);
-- Stale counters are swept by age on every failure.
CREATE INDEX login_throttle_updated_at_idx ON login_throttle (updated_at);
