\set t (:client_id % 10) * 4 + 4
UPDATE tenants SET deleted_at = CASE WHEN deleted_at IS NULL THEN now() ELSE NULL END, updated_at = now() WHERE id = 't' || :t;
