-- The pgbench reference table: the columns, constraints and index of `tenants`.
DROP TABLE IF EXISTS bench_tenants;
CREATE TABLE bench_tenants (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    slug        TEXT NOT NULL UNIQUE,
    account_id  TEXT NOT NULL UNIQUE,
    agent_id    TEXT NOT NULL UNIQUE,
    plan        TEXT NOT NULL CHECK (plan IN ('free', 'starter', 'pro', 'enterprise')),
    status      TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);
CREATE INDEX bench_tenants_created_at_id_idx ON bench_tenants (created_at, id);
