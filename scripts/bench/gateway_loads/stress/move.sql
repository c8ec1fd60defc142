\set t random(1, 36)
BEGIN;
SELECT pg_advisory_xact_lock(2512250001);
UPDATE tenant_placements SET state = 'moving', target_gateway_id = CASE gateway_id WHEN 'aaaaaaaa-0000-0000-0000-000000000000' THEN 'bbbbbbbb-0000-0000-0000-000000000000' ELSE 'aaaaaaaa-0000-0000-0000-000000000000' END, updated_at = now() WHERE tenant_id = 't' || :t AND state = 'placed';
UPDATE tenant_placements SET state = 'placed', gateway_id = target_gateway_id, target_gateway_id = NULL, updated_at = now() WHERE tenant_id = 't' || (:t % 36 + 1) AND state = 'moving';
COMMIT;
