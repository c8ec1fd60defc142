-- The secrets stay sealed, which older versions cannot read: to go back, restore a backup taken
-- before the upgrade rather than running this alone.
DROP INDEX webhook_endpoints_secret_key_id_idx;
ALTER TABLE webhook_endpoints DROP COLUMN secret_key_id;
