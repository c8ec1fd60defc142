-- Each gateway's held count, stored (issue 25, at scale): placing a tenant reads a few gateway
-- rows instead of counting every tenant. `held` is how many live tenants have a placement row
-- that puts them on the gateway or moves them to it (`placed` on `gateway_id`, `moving` to
-- `target_gateway_id`). The application keeps it exact, in the transaction of each change and
-- under the fleet lock (`tenant_store::gateways::set_placement`, `tenant_store::tenants::delete`),
-- never by triggers: channel and tenant writes cost nothing more. Tenants without a row are on
-- `default` and are not in its `held`: `default`'s count is `held` plus those, counted when a
-- decision needs it (docs/fleet.md).
ALTER TABLE gateways ADD COLUMN held BIGINT NOT NULL DEFAULT 0 CHECK (held >= 0);

-- A deleted tenant now loses its placement row when it is deleted (it is in no document); the
-- rows of tenants deleted before this release go now, as the purge's cascade would later.
DELETE FROM tenant_placements
WHERE tenant_id IN (SELECT id FROM tenants WHERE deleted_at IS NOT NULL);

UPDATE gateways SET held = (
    SELECT COUNT(*) FROM tenant_placements p
    WHERE (p.state = 'placed' AND p.gateway_id = gateways.id)
       OR (p.state = 'moving' AND p.target_gateway_id = gateways.id)
);
