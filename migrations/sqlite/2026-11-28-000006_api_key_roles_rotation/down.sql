DROP INDEX audit_log_action_created_at_idx;
DROP INDEX api_keys_tenant_id_created_at_idx;
ALTER TABLE api_keys DROP COLUMN replaced_by;
ALTER TABLE api_keys DROP COLUMN role;
