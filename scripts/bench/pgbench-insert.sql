-- pgbench custom script: one durable single-row INSERT per transaction into a table shaped like
-- `tenants` (same columns, constraints and index), the reference for create throughput.
INSERT INTO bench_tenants (id, name, slug, account_id, agent_id, plan, status, created_at, updated_at)
SELECT u, 'Bench tenant ' || u, 'bench-' || u, 'tenant-' || u, 'agent-' || u, 'free', 'active',
       now(), now()
FROM (SELECT gen_random_uuid()::text AS u) AS s;
