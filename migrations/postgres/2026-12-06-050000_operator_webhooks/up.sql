-- Operator webhooks (issue 25): an endpoint, an event and a delivery with no tenant belong to
-- the operator (events about the fleet: `tenant.unplaced`, `tenant.placed`, `gateway.stranded`).
-- Every tenant-scoped query filters on `tenant_id = $tenant`, which a NULL never matches.
ALTER TABLE webhook_endpoints ALTER COLUMN tenant_id DROP NOT NULL;
ALTER TABLE events ALTER COLUMN tenant_id DROP NOT NULL;
ALTER TABLE webhook_deliveries ALTER COLUMN tenant_id DROP NOT NULL;
