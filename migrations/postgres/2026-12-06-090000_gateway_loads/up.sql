-- What each gateway holds and a revision of its document, kept by the database itself
-- (issue 25, scale).
--
-- `held`: the live tenants (not deleted) placed on the gateway or moving to it; a tenant without
-- a placement row is on `default`; an unplaced tenant is held by no gateway. Placing a tenant
-- reads these few rows instead of counting every tenant.
--
-- `revision`: raised by every write to a tenant, its channels or its placement row, for each
-- gateway whose document holds or may hold the tenant (its placement row's gateways, or
-- `default` without one). Everything a document is made of is in those rows (the stamps the
-- config cache compares are theirs), so a gateway whose revision did not move since its document
-- was made needs no new look at the stamps when the global config revision moves.
--
-- The triggers below change both in the very statement that writes the row, so they are exact in
-- every transaction, whoever writes (this release, the previous one during a rolling upgrade, or
-- a manual fix).
--
-- `slot`: a transaction adds to the slot its transaction id picks (one of 16), so concurrent
-- writers do not all wait on `default`'s one row until they commit; a gateway's figures are the
-- sums of its slots. (SQLite has a single writer: slot 0 there.)
--
-- Locks, so that two transactions never count one tenant from stale reads of each other: a write
-- to a tenant row locks it; a placement change locks its tenant's row FOR NO KEY UPDATE and a
-- channel change FOR SHARE, then read the other rows afresh. So a tenant's deletion, a channel
-- change and a placement change of one tenant are serialised, and each sees the others' result.
CREATE TABLE gateway_loads (
    gateway_id  TEXT NOT NULL REFERENCES gateways (id) ON DELETE CASCADE,
    slot        INTEGER NOT NULL CHECK (slot >= 0 AND slot < 16),
    held        BIGINT NOT NULL,
    revision    BIGINT NOT NULL,
    PRIMARY KEY (gateway_id, slot)
);

-- Adds `delta` to what `gateway` holds and raises its revision (nothing for a NULL gateway).
CREATE FUNCTION gateway_loads_add(gateway TEXT, delta BIGINT) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF gateway IS NOT NULL THEN
        INSERT INTO gateway_loads (gateway_id, slot, held, revision)
        VALUES (gateway, (txid_current() % 16)::integer, delta, 1)
        ON CONFLICT (gateway_id, slot)
        DO UPDATE SET held = gateway_loads.held + EXCLUDED.held,
                      revision = gateway_loads.revision + 1;
    END IF;
END $$;

-- Who holds a placement row's tenant (NULL: nobody, it is unplaced).
CREATE FUNCTION gateway_loads_holder(state TEXT, gateway TEXT, target TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE state WHEN 'placed' THEN gateway WHEN 'moving' THEN target END
$$;

-- A tenant's gateways: `delta` to its holder (`default` without a placement row), and a new
-- revision for every gateway its row names.
CREATE FUNCTION gateway_loads_tenant(tenant TEXT, delta BIGINT) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    p RECORD;
    holder TEXT;
BEGIN
    SELECT state, gateway_id, target_gateway_id INTO p
    FROM tenant_placements WHERE tenant_id = tenant;
    IF NOT FOUND THEN
        PERFORM gateway_loads_add('00000000-0000-0000-0000-000000000000', delta);
        RETURN;
    END IF;
    holder := gateway_loads_holder(p.state, p.gateway_id, p.target_gateway_id);
    PERFORM gateway_loads_add(holder, delta);
    IF p.gateway_id IS DISTINCT FROM holder THEN
        PERFORM gateway_loads_add(p.gateway_id, 0);
    END IF;
    IF p.target_gateway_id IS DISTINCT FROM holder
       AND p.target_gateway_id IS DISTINCT FROM p.gateway_id THEN
        PERFORM gateway_loads_add(p.target_gateway_id, 0);
    END IF;
END $$;

-- A tenant created (live: on `default`, no placement row yet), changed, deleted or restored,
-- or its row removed (before the cascade takes its placement row).
CREATE FUNCTION gateway_loads_tenants() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM gateway_loads_tenant(NEW.id, CASE WHEN NEW.deleted_at IS NULL THEN 1 ELSE 0 END);
        RETURN NULL;
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM gateway_loads_tenant(NEW.id,
            CASE WHEN OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL THEN -1
                 WHEN OLD.deleted_at IS NOT NULL AND NEW.deleted_at IS NULL THEN 1
                 ELSE 0 END);
        RETURN NULL;
    ELSE
        PERFORM gateway_loads_tenant(OLD.id, CASE WHEN OLD.deleted_at IS NULL THEN -1 ELSE 0 END);
        RETURN OLD;
    END IF;
END $$;

CREATE TRIGGER gateway_loads_tenant_change AFTER INSERT OR UPDATE ON tenants
FOR EACH ROW EXECUTE FUNCTION gateway_loads_tenants();
CREATE TRIGGER gateway_loads_tenant_delete BEFORE DELETE ON tenants
FOR EACH ROW EXECUTE FUNCTION gateway_loads_tenants();

-- A channel written: its tenant's gateways get a new revision.
CREATE FUNCTION gateway_loads_channels() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tenant TEXT;
BEGIN
    tenant := CASE WHEN TG_OP = 'DELETE' THEN OLD.tenant_id ELSE NEW.tenant_id END;
    PERFORM 1 FROM tenants WHERE id = tenant FOR SHARE;
    PERFORM gateway_loads_tenant(tenant, 0);
    RETURN NULL;
END $$;

CREATE TRIGGER gateway_loads_channel_change AFTER INSERT OR UPDATE OR DELETE ON channels
FOR EACH ROW EXECUTE FUNCTION gateway_loads_channels();

-- A placement row written: a live tenant goes from its old holder (`default` without a row) to
-- its new one (none when unplaced); every gateway named before or after gets a new revision.
-- (When the tenant itself is deleted, the cascade runs after its row is gone: not live.)
CREATE FUNCTION gateway_loads_placements() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tenant TEXT;
    live BOOLEAN;
    n BIGINT;
BEGIN
    tenant := CASE WHEN TG_OP = 'DELETE' THEN OLD.tenant_id ELSE NEW.tenant_id END;
    SELECT deleted_at IS NULL INTO live FROM tenants WHERE id = tenant FOR NO KEY UPDATE;
    n := CASE WHEN live IS TRUE THEN 1 ELSE 0 END;
    IF TG_OP = 'INSERT' THEN
        PERFORM gateway_loads_add('00000000-0000-0000-0000-000000000000', -n);
    ELSE
        PERFORM gateway_loads_add(
            gateway_loads_holder(OLD.state, OLD.gateway_id, OLD.target_gateway_id), -n);
        PERFORM gateway_loads_add(OLD.gateway_id, 0);
        PERFORM gateway_loads_add(OLD.target_gateway_id, 0);
    END IF;
    IF TG_OP = 'DELETE' THEN
        PERFORM gateway_loads_add('00000000-0000-0000-0000-000000000000', n);
    ELSE
        PERFORM gateway_loads_add(
            gateway_loads_holder(NEW.state, NEW.gateway_id, NEW.target_gateway_id), n);
        PERFORM gateway_loads_add(NEW.gateway_id, 0);
        PERFORM gateway_loads_add(NEW.target_gateway_id, 0);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER gateway_loads_placement_change AFTER INSERT OR UPDATE OR DELETE
ON tenant_placements FOR EACH ROW EXECUTE FUNCTION gateway_loads_placements();

-- Backfilled from the rows as they are: every gateway gets a row (revision 0). The triggers
-- above already hold the tables' write locks, so nothing commits in between.
INSERT INTO gateway_loads (gateway_id, slot, held, revision)
SELECT g.id, 0, (
    SELECT COUNT(*)
    FROM tenants t LEFT JOIN tenant_placements p ON p.tenant_id = t.id
    WHERE t.deleted_at IS NULL
      AND CASE WHEN p.tenant_id IS NULL THEN '00000000-0000-0000-0000-000000000000'
               ELSE gateway_loads_holder(p.state, p.gateway_id, p.target_gateway_id)
          END = g.id
), 0
FROM gateways g;
