\set t random(1, 36)
UPDATE tenant_placements SET state = 'moving', target_gateway_id = CASE gateway_id WHEN 'aaaaaaaa-0000-0000-0000-000000000000' THEN 'bbbbbbbb-0000-0000-0000-000000000000' ELSE 'aaaaaaaa-0000-0000-0000-000000000000' END, updated_at = now() WHERE tenant_id IN ('t' || :t, 't' || (:t % 36 + 1)) AND state = 'placed';
