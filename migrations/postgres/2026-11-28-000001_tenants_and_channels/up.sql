-- Tenants and their messaging channels.
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    slug        TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    agent_id    TEXT NOT NULL,
    plan        TEXT NOT NULL CHECK (plan IN ('free', 'starter', 'pro', 'enterprise')),
    status      TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    CONSTRAINT tenants_slug_key UNIQUE (slug),
    CONSTRAINT tenants_account_id_key UNIQUE (account_id),
    CONSTRAINT tenants_agent_id_key UNIQUE (agent_id)
);
-- Keyset pagination walks tenants in creation order.
CREATE INDEX tenants_created_at_id_idx ON tenants (created_at, id);

CREATE TABLE channels (
    id            TEXT PRIMARY KEY NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind          TEXT NOT NULL,
    enabled       BOOLEAN NOT NULL,
    display_name  TEXT,
    credentials   TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    -- At most one channel per kind per tenant; also serves as the index on tenant_id.
    CONSTRAINT channels_tenant_id_kind_key UNIQUE (tenant_id, kind)
);
