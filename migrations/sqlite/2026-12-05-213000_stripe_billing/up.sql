-- Stripe billing (issue 16). One row per tenant that has been to billing: its Stripe customer
-- (created on demand, at most one per tenant), the subscription that decides its plan, and the
-- billing state derived from it. The `*_at` columns hold Stripe's own times (of the events and
-- objects applied), so events arriving out of order are judged by when they happened, not by
-- when they came.
CREATE TABLE tenant_billing (
    tenant_id             TEXT PRIMARY KEY NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    customer_id           TEXT UNIQUE,
    subscription_id       TEXT,
    subscription_status   TEXT,
    subscription_created  TIMESTAMP,
    price_id              TEXT,
    state                 TEXT NOT NULL,
    current_period_end    TIMESTAMP,
    status_at             TIMESTAMP,
    past_due_since        TIMESTAMP,
    paid_at               TIMESTAMP,
    suspended_at          TIMESTAMP,
    updated_at            TIMESTAMP NOT NULL
);
-- The sweep looks for tenants whose grace period ran out.
CREATE INDEX tenant_billing_past_due_since ON tenant_billing (past_due_since);
-- Every Stripe event applied, by its id: written in the transaction of its effect, so a
-- replayed event (Stripe retries, or a replay from its dashboard) changes nothing. No foreign
-- key: the record of an event outlives a deleted tenant, like the audit log.
CREATE TABLE stripe_events (
    id           TEXT PRIMARY KEY NOT NULL,
    event_type   TEXT NOT NULL,
    tenant_id    TEXT,
    created_at   TIMESTAMP NOT NULL,
    received_at  TIMESTAMP NOT NULL
);
CREATE INDEX stripe_events_received_at ON stripe_events (received_at);
