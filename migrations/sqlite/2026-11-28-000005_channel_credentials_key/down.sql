-- The credentials stay sealed, which older versions cannot read: to go back, restore a backup
-- taken before the upgrade rather than running this alone.
DROP INDEX channels_credentials_key_id_idx;
ALTER TABLE channels DROP COLUMN credentials_key_id;
