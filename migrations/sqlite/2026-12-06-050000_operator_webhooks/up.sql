-- Operator webhooks (issue 25): an endpoint, an event and a delivery with no tenant belong to
-- the operator (events about the fleet). Every tenant-scoped query filters on
-- `tenant_id = ?`, which a NULL never matches.
-- SQLite cannot drop a NOT NULL constraint: each table is rebuilt (the documented procedure:
-- foreign keys off, so dropping a parent does not cascade to its children, which keep naming
-- it; new table, copy, drop, rename; the same indexes). Outside diesel's transaction
-- (metadata.toml), in one of its own.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE webhook_endpoints_new (
    id           TEXT PRIMARY KEY NOT NULL,
    tenant_id    TEXT REFERENCES tenants (id) ON DELETE CASCADE,
    url          TEXT NOT NULL,
    description  TEXT,
    event_types  TEXT NOT NULL,
    secret       TEXT NOT NULL,
    enabled      BOOLEAN NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL,
    previous_secret_expires_at TIMESTAMP,
    failing_since TIMESTAMP,
    disabled_reason TEXT,
    secret_key_id TEXT
);
INSERT INTO webhook_endpoints_new (id, tenant_id, url, description, event_types, secret, enabled,
    created_at, updated_at, previous_secret_expires_at, failing_since, disabled_reason, secret_key_id)
  SELECT id, tenant_id, url, description, event_types, secret, enabled, created_at, updated_at,
    previous_secret_expires_at, failing_since, disabled_reason, secret_key_id
  FROM webhook_endpoints;
DROP TABLE webhook_endpoints;
ALTER TABLE webhook_endpoints_new RENAME TO webhook_endpoints;
CREATE INDEX webhook_endpoints_tenant_id_idx ON webhook_endpoints (tenant_id);
CREATE INDEX webhook_endpoints_secret_key_id_idx ON webhook_endpoints (secret_key_id);

CREATE TABLE events_new (
    id           TEXT PRIMARY KEY NOT NULL,
    tenant_id    TEXT REFERENCES tenants (id) ON DELETE CASCADE,
    -- Who produced the event (`gateway`, `test`, `fleet`, …) and its id there: an id is
    -- accepted once.
    source       TEXT NOT NULL,
    source_id    TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    -- The exact JSON body delivered to endpoints.
    payload      TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    CONSTRAINT events_source_source_id_key UNIQUE (source, source_id)
);
INSERT INTO events_new (id, tenant_id, source, source_id, event_type, payload, created_at)
  SELECT id, tenant_id, source, source_id, event_type, payload, created_at FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX events_tenant_id_created_at_idx ON events (tenant_id, created_at);
CREATE INDEX events_created_at_idx ON events (created_at);

CREATE TABLE webhook_deliveries_new (
    id                TEXT PRIMARY KEY NOT NULL,
    tenant_id         TEXT REFERENCES tenants (id) ON DELETE CASCADE,
    endpoint_id       TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id          TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    -- pending | succeeded | failed (exhausted or endpoint disabled: a dead letter)
    status            TEXT NOT NULL,
    attempts          INTEGER NOT NULL,
    -- When the delivery is due; while leased, the lease's expiry (so a crashed claimer's
    -- deliveries fall due again by themselves).
    next_attempt_at   TIMESTAMP NOT NULL,
    lease_owner       TEXT,
    last_status_code  INTEGER,
    last_error        TEXT,
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL,
    completed_at      TIMESTAMP
);
INSERT INTO webhook_deliveries_new (id, tenant_id, endpoint_id, event_id, status, attempts,
    next_attempt_at, lease_owner, last_status_code, last_error, created_at, updated_at,
    completed_at)
  SELECT id, tenant_id, endpoint_id, event_id, status, attempts, next_attempt_at, lease_owner,
    last_status_code, last_error, created_at, updated_at, completed_at
  FROM webhook_deliveries;
DROP TABLE webhook_deliveries;
ALTER TABLE webhook_deliveries_new RENAME TO webhook_deliveries;
CREATE INDEX webhook_deliveries_status_next_attempt_at_idx ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint_id_created_at_idx ON webhook_deliveries (endpoint_id, created_at);
CREATE INDEX webhook_deliveries_event_id_idx ON webhook_deliveries (event_id);
CREATE INDEX webhook_deliveries_tenant_id_idx ON webhook_deliveries (tenant_id);
CREATE INDEX webhook_deliveries_status_endpoint_id_next_attempt_at_idx
    ON webhook_deliveries (status, endpoint_id, next_attempt_at);
CREATE INDEX webhook_deliveries_completed_at_idx ON webhook_deliveries (completed_at)
    WHERE completed_at IS NOT NULL;
COMMIT;
PRAGMA foreign_keys = ON;
