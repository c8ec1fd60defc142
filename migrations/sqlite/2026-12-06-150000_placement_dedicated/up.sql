-- An operator's wish for a dedicated gateway, given when the tenant was created (`POST /tenants`
-- with `dedicated: true`, `tenants create --dedicated`; issue 25). Placement treats it as a plan
-- in `SAAS_DEDICATED_PLANS`: on a dedicated gateway with room, else `unplaced` until one has
-- room, also when the waiting tenants are placed later or the tenant is drained or failed over.
-- Only a tenant with a placement row can have asked (asking always writes one); `FALSE`: the
-- plan decides, as before.
ALTER TABLE tenant_placements ADD COLUMN dedicated BOOLEAN NOT NULL DEFAULT FALSE;
