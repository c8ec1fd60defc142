-- The operator's endpoints, events and deliveries go with the shape that cannot hold them.
DELETE FROM webhook_deliveries WHERE tenant_id IS NULL;
DELETE FROM events WHERE tenant_id IS NULL;
DELETE FROM webhook_endpoints WHERE tenant_id IS NULL;
ALTER TABLE webhook_deliveries ALTER COLUMN tenant_id SET NOT NULL;
ALTER TABLE events ALTER COLUMN tenant_id SET NOT NULL;
ALTER TABLE webhook_endpoints ALTER COLUMN tenant_id SET NOT NULL;
