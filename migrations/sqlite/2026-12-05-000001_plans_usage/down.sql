ALTER TABLE tenants DROP COLUMN quota_exceeded_period;
DROP TABLE usage_counters;
DROP TABLE tenant_limits;
