-- Gateway sessions seen in events, the audit log, and tenants' webhook endpoints.
CREATE TABLE sessions (
    id                TEXT PRIMARY KEY NOT NULL,
    tenant_id         TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    session_key       TEXT NOT NULL,
    channel           TEXT NOT NULL,
    peer_id           TEXT,
    chat_type         TEXT NOT NULL,
    created_at        TIMESTAMP NOT NULL,
    last_activity_at  TIMESTAMP NOT NULL,
    -- Also serves as the index on tenant_id.
    CONSTRAINT sessions_tenant_id_session_key_key UNIQUE (tenant_id, session_key)
);
-- Expired sessions are purged by last activity.
CREATE INDEX sessions_last_activity_at_idx ON sessions (last_activity_at);

-- tenant_id is deliberately not a foreign key: the record of a tenant's deletion
-- must outlive the tenant.
CREATE TABLE audit_log (
    id             TEXT PRIMARY KEY NOT NULL,
    tenant_id      TEXT,
    actor_type     TEXT NOT NULL,
    actor_id       TEXT,
    action         TEXT NOT NULL,
    resource_type  TEXT NOT NULL,
    resource_id    TEXT,
    request_id     TEXT,
    client_addr    TEXT,
    user_agent     TEXT,
    details        TEXT,
    created_at     TIMESTAMP NOT NULL
);
CREATE INDEX audit_log_tenant_id_created_at_idx ON audit_log (tenant_id, created_at);
CREATE INDEX audit_log_created_at_idx ON audit_log (created_at);

CREATE TABLE webhook_endpoints (
    id           TEXT PRIMARY KEY NOT NULL,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url          TEXT NOT NULL,
    description  TEXT,
    event_types  TEXT NOT NULL,
    secret       TEXT NOT NULL,
    enabled      BOOLEAN NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL
);
CREATE INDEX webhook_endpoints_tenant_id_idx ON webhook_endpoints (tenant_id);
