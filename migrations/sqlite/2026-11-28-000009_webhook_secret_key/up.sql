-- Webhook signing secrets are sealed at rest like channel credentials: `secret` holds an
-- envelope, `secret_key_id` the key that sealed it (NULL: a plaintext value of an older version,
-- sealed on the next start or by `moltbot-saas keys rotate`), indexed so rotation finds the rows
-- not yet under the active key.
ALTER TABLE webhook_endpoints ADD COLUMN secret_key_id TEXT;
CREATE INDEX webhook_endpoints_secret_key_id_idx ON webhook_endpoints (secret_key_id);
