-- Channel credentials are sealed at rest (XChaCha20-Poly1305 envelopes in `credentials`).
-- `credentials_key_id` names the key that sealed the row (NULL: a plaintext row written by an
-- older version, sealed by `moltbot-saas keys rotate` or on the next start), so rotation finds
-- the rows not yet under the active key through an index instead of opening every row.
ALTER TABLE channels ADD COLUMN credentials_key_id TEXT;
CREATE INDEX channels_credentials_key_id_idx ON channels (credentials_key_id);
