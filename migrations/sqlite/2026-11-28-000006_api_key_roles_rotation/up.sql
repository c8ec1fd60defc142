-- API keys carry a role, and a rotated key names its successor. Keys stored before this migration
-- hashed with plain SHA-256 no longer match (keys are now HMAC-SHA256 with a server secret) and
-- must be re-issued; they keep the owner role they implicitly had.
ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'owner' CHECK (role IN ('owner', 'admin', 'member'));
-- Not a foreign key: the successor may be revoked and the history still reads.
ALTER TABLE api_keys ADD COLUMN replaced_by TEXT;
-- Keyset pagination of a tenant's keys.
CREATE INDEX api_keys_tenant_id_created_at_idx ON api_keys (tenant_id, created_at, id);
-- Filtered audit listings across tenants.
CREATE INDEX audit_log_action_created_at_idx ON audit_log (action, created_at);
