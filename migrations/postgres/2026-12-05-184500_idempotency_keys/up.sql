-- Idempotency-Key requests (draft-ietf-httpapi-idempotency-key-header): one row per key a caller
-- used on a creating request, written in the same transaction as what the request created, with
-- the answer it got, so that a retry gets the same answer and creates nothing. The caller
-- (principal kind and id), the method and the path scope the key; the body's SHA-256 tells a
-- retry from a reuse of the key for another request. An answer that holds a secret (a one-time
-- API key) is sealed with the credential key ring (`sealed`). Rows expire after
-- `SAAS_IDEMPOTENCY_TTL` and are purged by the server's background maintenance.
CREATE TABLE idempotency_keys (
    caller       TEXT NOT NULL,
    method       TEXT NOT NULL,
    path         TEXT NOT NULL,
    idem_key     TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    status_code  INTEGER NOT NULL,
    location     TEXT,
    body         TEXT NOT NULL,
    sealed       BOOLEAN NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (caller, method, path, idem_key)
);
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
