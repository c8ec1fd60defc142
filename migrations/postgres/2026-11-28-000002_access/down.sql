DROP TABLE tenant_users;
DROP TABLE api_keys;
DROP TABLE access_tokens;
