DROP TABLE maintenance_leases;
DROP INDEX tenants_deleted_at_idx;
ALTER TABLE tenants DROP COLUMN deleted_at;
DROP INDEX webhook_deliveries_completed_at_idx;
DROP INDEX events_created_at_idx;
