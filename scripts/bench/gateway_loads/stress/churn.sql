\set n random(1000, 1000000000)
BEGIN;
INSERT INTO tenants (id,name,slug,account_id,agent_id,plan,status,created_at,updated_at) VALUES ('x' || :n, 'X', 'x' || :n, 'xa' || :n, 'xg' || :n, 'free', 'active', now(), now()) ON CONFLICT DO NOTHING;
INSERT INTO channels (id,tenant_id,kind,enabled,credentials,created_at,updated_at) VALUES ('xc' || :n, 'x' || :n, 'discord', true, 'x', now(), now()) ON CONFLICT DO NOTHING;
COMMIT;
BEGIN;
SELECT pg_advisory_xact_lock(2512250001);
INSERT INTO tenant_placements (tenant_id, gateway_id, state, updated_at) VALUES ('x' || :n, CASE WHEN :n % 2 = 0 THEN 'aaaaaaaa-0000-0000-0000-000000000000' ELSE 'bbbbbbbb-0000-0000-0000-000000000000' END, 'placed', now()) ON CONFLICT DO NOTHING;
COMMIT;
DELETE FROM tenants WHERE id IN (SELECT id FROM tenants WHERE id LIKE 'x%' AND id <> 'x' || :n ORDER BY random() LIMIT 1);
