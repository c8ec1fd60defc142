CREATE OR REPLACE VIEW recount AS
SELECT holder AS gateway_id, COUNT(*) AS held FROM (
  SELECT CASE WHEN p.tenant_id IS NULL THEN '00000000-0000-0000-0000-000000000000'
              ELSE gateway_loads_holder(p.state, p.gateway_id, p.target_gateway_id) END AS holder
  FROM tenants t LEFT JOIN tenant_placements p ON p.tenant_id = t.id WHERE t.deleted_at IS NULL) x
WHERE holder IS NOT NULL GROUP BY holder;
CREATE OR REPLACE VIEW stored AS SELECT gateway_id, SUM(held)::bigint AS held, SUM(revision)::bigint AS revision, COUNT(*) AS rows FROM gateway_loads GROUP BY gateway_id;
CREATE OR REPLACE VIEW mismatch AS
SELECT COALESCE(s.gateway_id, r.gateway_id) g, s.held stored, r.held counted FROM stored s FULL JOIN recount r USING (gateway_id)
WHERE COALESCE(s.held,0) <> COALESCE(r.held,0);
INSERT INTO gateways (id,name,kind,capacity,created_at,updated_at) VALUES
 ('aaaaaaaa-0000-0000-0000-000000000000','a','shared',1000,now(),now()),
 ('bbbbbbbb-0000-0000-0000-000000000000','b','shared',1000,now(),now());
-- 40 tenants in one statement
INSERT INTO tenants (id,name,slug,account_id,agent_id,plan,status,created_at,updated_at)
SELECT 't'||i, 'T'||i, 's'||i, 'acc'||i, 'ag'||i, 'free','active',now(),now() FROM generate_series(1,40) i;
-- 20 on a, 20 on b
INSERT INTO tenant_placements (tenant_id,gateway_id,state,updated_at)
SELECT 't'||i, CASE WHEN i%2=0 THEN 'aaaaaaaa-0000-0000-0000-000000000000' ELSE 'bbbbbbbb-0000-0000-0000-000000000000' END,'placed',now() FROM generate_series(1,36) i;
INSERT INTO channels (id,tenant_id,kind,enabled,credentials,created_at,updated_at)
SELECT 'c'||i, 't'||i, 'discord', true, 'x', now(), now() FROM generate_series(1,40) i;
