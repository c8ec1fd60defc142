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
-- The triggers below change both in the statement that writes the row, so they are exact in
-- every transaction, whoever writes (this release, the previous one during a rolling upgrade, or
-- a manual fix). A gateway's figures are the sums of its rows.
--
-- No waits on these rows, so no deadlock through them: a transaction adds to a row of the gateway
-- that no other transaction has locked (`FOR UPDATE SKIP LOCKED`), or inserts a new row when all
-- are taken. A gateway has at most as many rows as transactions ever wrote to it at once.
--
-- Exactness between tables: a count moves by a delta computed from the other table's rows (a
-- tenant's change reads its placement row; a placement's change reads its tenant's
-- `deleted_at`), read under the fleet lock (`tenant_store::gateways::lock_fleet`, the advisory
-- lock 2512250001): a statement that writes placement rows holds it exclusively (placement
-- changes take it first in their transaction; a statement issued by hand takes it in its
-- statement trigger), a statement that changes or removes tenants, or writes channels, holds it
-- shared (their writers do not wait on each other). So a placement change and a change of its
-- tenant never read each other's rows half-written: whichever comes second sees the first
-- committed. Each statement takes it *before* it locks any row (statement triggers that run
-- before the statement), so a writer never holds a row of these tables that a placement change
-- waits for while it waits for the lock itself. (Tenants created need no lock: no placement
-- row can name them before they commit. A placement row removed by a tenant's removal, the
-- cascade, runs inside that statement, under its shared lock, and counts nothing.)
CREATE TABLE gateway_loads (
    id          BIGSERIAL PRIMARY KEY,
    gateway_id  TEXT NOT NULL,
    held        BIGINT NOT NULL,
    revision    BIGINT NOT NULL
);
CREATE INDEX gateway_loads_gateway_id ON gateway_loads (gateway_id);

-- Adds `deltas[i]` (NULL: 0) to what `gateways[i]` holds and raises its revision, once per
-- distinct gateway (NULL gateways skipped), each on a row no other transaction holds. Plain
-- PL/pgSQL arithmetic, then one statement per gateway: a trigger makes one call.
CREATE FUNCTION gateway_loads_apply(gateways TEXT[], deltas BIGINT[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    seen TEXT[] := '{}';
    sums BIGINT[] := '{}';
    i INT;
    j INT;
BEGIN
    FOR i IN 1 .. COALESCE(array_length(gateways, 1), 0) LOOP
        CONTINUE WHEN gateways[i] IS NULL;
        j := array_position(seen, gateways[i]);
        IF j IS NULL THEN
            seen := seen || gateways[i];
            sums := sums || COALESCE(deltas[i], 0);
        ELSE
            sums[j] := sums[j] + COALESCE(deltas[i], 0);
        END IF;
    END LOOP;
    FOR i IN 1 .. COALESCE(array_length(seen, 1), 0) LOOP
        UPDATE gateway_loads SET held = held + sums[i], revision = revision + 1
        WHERE id = (
            SELECT id FROM gateway_loads WHERE gateway_id = seen[i]
            LIMIT 1 FOR UPDATE SKIP LOCKED
        );
        IF NOT FOUND THEN
            INSERT INTO gateway_loads (gateway_id, held, revision) VALUES (seen[i], sums[i], 1);
        END IF;
    END LOOP;
END $$;

-- Who holds a placement row's tenant (NULL: nobody, it is unplaced).
CREATE FUNCTION gateway_loads_holder(state TEXT, gateway TEXT, target TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE state WHEN 'placed' THEN gateway WHEN 'moving' THEN target END
$$;

-- The fleet lock, shared: taken before a statement writes tenants or channels.
CREATE FUNCTION gateway_loads_lock_shared() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(2512250001);
    RETURN NULL;
END $$;

-- The fleet lock, exclusive: taken before a statement writes placement rows, unless it is the
-- cascade of a tenant's removal (a statement run by another statement's trigger, which holds
-- the lock shared).
CREATE FUNCTION gateway_loads_lock_exclusive() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() = 1 THEN
        PERFORM pg_advisory_xact_lock(2512250001);
    END IF;
    RETURN NULL;
END $$;

-- Tenants created (a batch in one statement): on `default`, without a placement row (a row
-- names an existing tenant). One change for the whole statement; no lock: no placement row can
-- name them yet.
CREATE FUNCTION gateway_loads_tenants_created() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    n BIGINT;
    live BIGINT;
BEGIN
    SELECT COUNT(*), COUNT(*) FILTER (WHERE deleted_at IS NULL) INTO n, live FROM created;
    IF n > 0 THEN
        PERFORM gateway_loads_apply(ARRAY['00000000-0000-0000-0000-000000000000'], ARRAY[live]);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER gateway_loads_tenants_created AFTER INSERT ON tenants
REFERENCING NEW TABLE AS created
FOR EACH STATEMENT EXECUTE FUNCTION gateway_loads_tenants_created();

-- A tenant changed, deleted or restored, or its row removed (before the cascade takes its
-- placement row, so its gateways are still known).
CREATE FUNCTION gateway_loads_tenants() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tenant TEXT;
    delta BIGINT;
    p RECORD;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        tenant := NEW.id;
        delta := CASE WHEN OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL THEN -1
                      WHEN OLD.deleted_at IS NOT NULL AND NEW.deleted_at IS NULL THEN 1
                      ELSE 0 END;
    ELSE
        tenant := OLD.id;
        delta := CASE WHEN OLD.deleted_at IS NULL THEN -1 ELSE 0 END;
    END IF;
    -- `delta` to its holder (`default` without a placement row), and a new revision for every
    -- gateway its row names.
    SELECT state, gateway_id, target_gateway_id INTO p
    FROM tenant_placements WHERE tenant_id = tenant;
    IF NOT FOUND THEN
        PERFORM gateway_loads_apply(ARRAY['00000000-0000-0000-0000-000000000000'], ARRAY[delta]);
    ELSE
        PERFORM gateway_loads_apply(
            ARRAY[gateway_loads_holder(p.state, p.gateway_id, p.target_gateway_id),
                  p.gateway_id, p.target_gateway_id],
            ARRAY[delta]);
    END IF;
    IF TG_OP = 'UPDATE' THEN
        RETURN NULL;
    END IF;
    RETURN OLD;
END $$;

CREATE TRIGGER gateway_loads_tenant_lock BEFORE UPDATE OR DELETE ON tenants
FOR EACH STATEMENT EXECUTE FUNCTION gateway_loads_lock_shared();
CREATE TRIGGER gateway_loads_tenant_change AFTER UPDATE ON tenants
FOR EACH ROW EXECUTE FUNCTION gateway_loads_tenants();
CREATE TRIGGER gateway_loads_tenant_delete BEFORE DELETE ON tenants
FOR EACH ROW EXECUTE FUNCTION gateway_loads_tenants();

-- Channels written (a group commit's batch is one statement): each gateway named by a changed
-- channel's tenant gets one new revision for the whole statement (its placement row's gateways;
-- `default` without a row). Channels removed by a tenant's
-- removal (the cascade, a statement run by that statement's trigger) count nothing: the tenant's
-- own trigger did. Each placement row is looked up by its key (`OFFSET 0` keeps the lookup a
-- nested loop: the planner cannot know how few rows a transition table has).
CREATE FUNCTION gateway_loads_channels() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    named TEXT[];
BEGIN
    IF pg_trigger_depth() > 1 THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(n.gateway) INTO named
    FROM changed c
    LEFT JOIN LATERAL (
        SELECT TRUE AS found, gateway_id, target_gateway_id
        FROM tenant_placements WHERE tenant_id = c.tenant_id
        OFFSET 0
    ) p ON TRUE
    CROSS JOIN LATERAL unnest(
        CASE WHEN p.found IS NULL
             THEN ARRAY['00000000-0000-0000-0000-000000000000']
             ELSE ARRAY[p.gateway_id, p.target_gateway_id] END
    ) AS n (gateway);
    PERFORM gateway_loads_apply(named, NULL);
    RETURN NULL;
END $$;

CREATE TRIGGER gateway_loads_channel_lock BEFORE INSERT OR UPDATE OR DELETE ON channels
FOR EACH STATEMENT EXECUTE FUNCTION gateway_loads_lock_shared();
CREATE TRIGGER gateway_loads_channels_created AFTER INSERT ON channels
REFERENCING NEW TABLE AS changed
FOR EACH STATEMENT EXECUTE FUNCTION gateway_loads_channels();
CREATE TRIGGER gateway_loads_channels_changed AFTER UPDATE ON channels
REFERENCING NEW TABLE AS changed
FOR EACH STATEMENT EXECUTE FUNCTION gateway_loads_channels();
CREATE TRIGGER gateway_loads_channels_deleted AFTER DELETE ON channels
REFERENCING OLD TABLE AS changed
FOR EACH STATEMENT EXECUTE FUNCTION gateway_loads_channels();

-- A placement row written: a live tenant goes from its old holder (`default` without a row) to
-- its new one (none when unplaced); every gateway named before or after gets a new revision.
-- Under the fleet lock, exclusively. When the tenant's row is gone (removed in this statement:
-- the cascade), its own trigger counted.
CREATE FUNCTION gateway_loads_placements() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tenant TEXT;
    live BOOLEAN;
    n BIGINT;
BEGIN
    tenant := CASE WHEN TG_OP = 'DELETE' THEN OLD.tenant_id ELSE NEW.tenant_id END;
    SELECT deleted_at IS NULL INTO live FROM tenants WHERE id = tenant;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    n := CASE WHEN live IS TRUE THEN 1 ELSE 0 END;
    -- From the old holder (`default` for a new row) to the new one (`default` for a removed
    -- row); each gateway named before or after gets a new revision.
    IF TG_OP = 'INSERT' THEN
        PERFORM gateway_loads_apply(
            ARRAY['00000000-0000-0000-0000-000000000000',
                  gateway_loads_holder(NEW.state, NEW.gateway_id, NEW.target_gateway_id),
                  NEW.gateway_id, NEW.target_gateway_id],
            ARRAY[-n, n]);
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM gateway_loads_apply(
            ARRAY[gateway_loads_holder(OLD.state, OLD.gateway_id, OLD.target_gateway_id),
                  gateway_loads_holder(NEW.state, NEW.gateway_id, NEW.target_gateway_id),
                  OLD.gateway_id, OLD.target_gateway_id, NEW.gateway_id, NEW.target_gateway_id],
            ARRAY[-n, n]);
    ELSE
        PERFORM gateway_loads_apply(
            ARRAY[gateway_loads_holder(OLD.state, OLD.gateway_id, OLD.target_gateway_id),
                  '00000000-0000-0000-0000-000000000000',
                  OLD.gateway_id, OLD.target_gateway_id],
            ARRAY[-n, n]);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER gateway_loads_placement_lock BEFORE INSERT OR UPDATE OR DELETE
ON tenant_placements FOR EACH STATEMENT EXECUTE FUNCTION gateway_loads_lock_exclusive();
CREATE TRIGGER gateway_loads_placement_change AFTER INSERT OR UPDATE OR DELETE
ON tenant_placements FOR EACH ROW EXECUTE FUNCTION gateway_loads_placements();

-- Backfilled from the rows as they are: one row per gateway (revision 0). The triggers above
-- hold the tables' write locks since their creation, so nothing commits in between.
INSERT INTO gateway_loads (gateway_id, held, revision)
SELECT g.id, (
    SELECT COUNT(*)
    FROM tenants t LEFT JOIN tenant_placements p ON p.tenant_id = t.id
    WHERE t.deleted_at IS NULL
      AND CASE WHEN p.tenant_id IS NULL THEN '00000000-0000-0000-0000-000000000000'
               ELSE gateway_loads_holder(p.state, p.gateway_id, p.target_gateway_id)
          END = g.id
), 0
FROM gateways g;
