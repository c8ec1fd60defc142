-- Plans, usage and quotas (issue 15). A tenant's limits are its plan's (built in, or from the
-- operator's plans file) overlaid with its own overrides, one nullable column per limit (NULL:
-- the plan's value).
CREATE TABLE tenant_limits (
    tenant_id                      TEXT PRIMARY KEY NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    max_channels                   BIGINT,
    max_webhook_endpoints          BIGINT,
    messages_per_month             BIGINT,
    requests_per_minute_per_key    BIGINT,
    requests_per_minute_per_tenant BIGINT,
    request_burst                  BIGINT,
    updated_at                     TIMESTAMP NOT NULL
);
-- What a tenant used per calendar month (UTC, `YYYY-MM`), kept after the month ends. Messages are
-- added in the transaction that stores their events (so a duplicate event id never counts);
-- API requests are added by each replica's periodic flush. The two timestamps record that the
-- soft-limit and hard-limit events of the period were sent (each once).
CREATE TABLE usage_counters (
    tenant_id             TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    period                TEXT NOT NULL,
    messages              BIGINT NOT NULL DEFAULT 0,
    api_requests          BIGINT NOT NULL DEFAULT 0,
    threshold_notified_at TIMESTAMP,
    exceeded_at           TIMESTAMP,
    PRIMARY KEY (tenant_id, period)
);
-- The period in which the tenant used up its messages: its channel accounts are left out of the
-- gateway config while this is the current period. Cleared by a plan change.
ALTER TABLE tenants ADD COLUMN quota_exceeded_period TEXT;
