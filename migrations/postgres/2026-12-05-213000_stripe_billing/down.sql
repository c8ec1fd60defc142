DROP TABLE stripe_events;
DROP TABLE tenant_billing;
