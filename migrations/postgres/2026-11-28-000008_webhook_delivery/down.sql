DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE events;
ALTER TABLE webhook_endpoints DROP COLUMN disabled_reason;
ALTER TABLE webhook_endpoints DROP COLUMN failing_since;
ALTER TABLE webhook_endpoints DROP COLUMN previous_secret_expires_at;
