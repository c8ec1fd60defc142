DROP TABLE login_throttle;
DROP TABLE refresh_tokens;
DROP TABLE operator_users;
DROP INDEX tenant_users_invite_hash_key;
ALTER TABLE tenant_users DROP COLUMN invite_expires_at;
ALTER TABLE tenant_users DROP COLUMN invite_hash;
ALTER TABLE tenant_users DROP COLUMN password_changed_at;
ALTER TABLE tenant_users DROP COLUMN last_login_at;
ALTER TABLE tenant_users DROP COLUMN disabled;
