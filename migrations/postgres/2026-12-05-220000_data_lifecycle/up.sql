-- Data lifecycle (issue 27): history is kept for a stated time, then purged in small batches by
-- one replica at a time; a deleted tenant is marked `deleted` at once and its rows are purged in
-- the background by the same batches.

-- The retention purge walks events and finished deliveries by age. The deliveries' index is
-- partial: a pending delivery (no completed_at) never enters it, so enqueuing costs nothing more.
CREATE INDEX events_created_at_idx ON events (created_at);
CREATE INDEX webhook_deliveries_completed_at_idx ON webhook_deliveries (completed_at)
    WHERE completed_at IS NOT NULL;
-- When the tenant was deleted: from then on no lookup finds it, and the background purge
-- removes its rows in batches, its own last. NULL for a live tenant.
ALTER TABLE tenants ADD COLUMN deleted_at TIMESTAMP;
-- Tenants awaiting the background purge of their rows (few, if any).
CREATE INDEX tenants_deleted_at_idx ON tenants (deleted_at) WHERE deleted_at IS NOT NULL;

-- Leases of background work that one replica at a time does (`purge`): the holder renews its
-- row; another replica takes it over once it has expired.
CREATE TABLE maintenance_leases (
    name        TEXT PRIMARY KEY NOT NULL,
    holder      TEXT NOT NULL,
    expires_at  TIMESTAMP NOT NULL
);
