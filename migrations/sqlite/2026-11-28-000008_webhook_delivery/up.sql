-- Events from the gateway and the durable webhook outbox: one delivery per (event, endpoint),
-- claimed by dispatchers with a lease, every attempt recorded.

-- Secret rotation: `secret` holds the current and, during an overlap window, the previous
-- signing secret (space-separated); the previous one is used until this time.
ALTER TABLE webhook_endpoints ADD COLUMN previous_secret_expires_at TIMESTAMP;
-- When the endpoint started failing continuously (NULL while healthy).
ALTER TABLE webhook_endpoints ADD COLUMN failing_since TIMESTAMP;
-- Why the endpoint was disabled automatically (`gone`, `failing`), NULL otherwise.
ALTER TABLE webhook_endpoints ADD COLUMN disabled_reason TEXT;

CREATE TABLE events (
    id           TEXT PRIMARY KEY NOT NULL,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- Who produced the event (`gateway`, `test`, …) and its id there: an id is accepted once.
    source       TEXT NOT NULL,
    source_id    TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    -- The exact JSON body delivered to endpoints.
    payload      TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    CONSTRAINT events_source_source_id_key UNIQUE (source, source_id)
);
CREATE INDEX events_tenant_id_created_at_idx ON events (tenant_id, created_at);

CREATE TABLE webhook_deliveries (
    id                TEXT PRIMARY KEY NOT NULL,
    tenant_id         TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
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
-- The claim query: due pending deliveries, oldest first.
CREATE INDEX webhook_deliveries_status_next_attempt_at_idx ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint_id_created_at_idx ON webhook_deliveries (endpoint_id, created_at);
CREATE INDEX webhook_deliveries_event_id_idx ON webhook_deliveries (event_id);
CREATE INDEX webhook_deliveries_tenant_id_idx ON webhook_deliveries (tenant_id);

CREATE TABLE webhook_attempts (
    id                TEXT PRIMARY KEY NOT NULL,
    delivery_id       TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt           INTEGER NOT NULL,
    -- success | http_error | timeout | connect_error | refused (SSRF guard)
    outcome           TEXT NOT NULL,
    status_code       INTEGER,
    latency_ms        BIGINT NOT NULL,
    error             TEXT,
    response_excerpt  TEXT,
    created_at        TIMESTAMP NOT NULL
);
CREATE INDEX webhook_attempts_delivery_id_attempt_idx ON webhook_attempts (delivery_id, attempt);
