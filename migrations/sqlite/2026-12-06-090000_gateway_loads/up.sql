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
-- SQLite has a single writer: one row per gateway (PostgreSQL spreads a gateway's figures over
-- rows that concurrent writers take without waiting, and sums them; so do the readers here).
CREATE TABLE gateway_loads (
    id          INTEGER PRIMARY KEY NOT NULL,
    gateway_id  TEXT NOT NULL UNIQUE,
    held        BIGINT NOT NULL,
    revision    BIGINT NOT NULL
);

-- A tenant created (live: on `default`, no placement row yet), changed, deleted or restored.
CREATE TRIGGER gateway_loads_tenant_insert AFTER INSERT ON tenants
BEGIN
    INSERT INTO gateway_loads (gateway_id, held, revision)
    SELECT gateway, SUM(delta), 1
    FROM (
        SELECT CASE p.state WHEN 'placed' THEN p.gateway_id WHEN 'moving' THEN p.target_gateway_id END AS gateway, CASE WHEN NEW.deleted_at IS NULL THEN 1 ELSE 0 END AS delta
        FROM tenant_placements p WHERE p.tenant_id = NEW.id
        UNION ALL
        SELECT p.gateway_id, 0 FROM tenant_placements p WHERE p.tenant_id = NEW.id
        UNION ALL
        SELECT p.target_gateway_id, 0 FROM tenant_placements p WHERE p.tenant_id = NEW.id
        UNION ALL
        SELECT '00000000-0000-0000-0000-000000000000', CASE WHEN NEW.deleted_at IS NULL THEN 1 ELSE 0 END
        WHERE NOT EXISTS (SELECT 1 FROM tenant_placements p WHERE p.tenant_id = NEW.id)
    )
    WHERE gateway IS NOT NULL
    GROUP BY gateway
    ON CONFLICT (gateway_id)
    DO UPDATE SET held = held + excluded.held, revision = revision + 1;
END;

CREATE TRIGGER gateway_loads_tenant_update AFTER UPDATE ON tenants
BEGIN
    INSERT INTO gateway_loads (gateway_id, held, revision)
    SELECT gateway, SUM(delta), 1
    FROM (
        SELECT CASE p.state WHEN 'placed' THEN p.gateway_id WHEN 'moving' THEN p.target_gateway_id END AS gateway, CASE WHEN OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL THEN -1 WHEN OLD.deleted_at IS NOT NULL AND NEW.deleted_at IS NULL THEN 1 ELSE 0 END AS delta
        FROM tenant_placements p WHERE p.tenant_id = NEW.id
        UNION ALL
        SELECT p.gateway_id, 0 FROM tenant_placements p WHERE p.tenant_id = NEW.id
        UNION ALL
        SELECT p.target_gateway_id, 0 FROM tenant_placements p WHERE p.tenant_id = NEW.id
        UNION ALL
        SELECT '00000000-0000-0000-0000-000000000000', CASE WHEN OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL THEN -1 WHEN OLD.deleted_at IS NOT NULL AND NEW.deleted_at IS NULL THEN 1 ELSE 0 END
        WHERE NOT EXISTS (SELECT 1 FROM tenant_placements p WHERE p.tenant_id = NEW.id)
    )
    WHERE gateway IS NOT NULL
    GROUP BY gateway
    ON CONFLICT (gateway_id)
    DO UPDATE SET held = held + excluded.held, revision = revision + 1;
END;

-- A tenant's row removed (the purge removes deleted ones, which count nowhere; a live one loses
-- its room): before the cascade takes its placement row, so its gateways are still known.
CREATE TRIGGER gateway_loads_tenant_delete BEFORE DELETE ON tenants
BEGIN
    INSERT INTO gateway_loads (gateway_id, held, revision)
    SELECT gateway, SUM(delta), 1
    FROM (
        SELECT CASE p.state WHEN 'placed' THEN p.gateway_id WHEN 'moving' THEN p.target_gateway_id END AS gateway, CASE WHEN OLD.deleted_at IS NULL THEN -1 ELSE 0 END AS delta
        FROM tenant_placements p WHERE p.tenant_id = OLD.id
        UNION ALL
        SELECT p.gateway_id, 0 FROM tenant_placements p WHERE p.tenant_id = OLD.id
        UNION ALL
        SELECT p.target_gateway_id, 0 FROM tenant_placements p WHERE p.tenant_id = OLD.id
        UNION ALL
        SELECT '00000000-0000-0000-0000-000000000000', CASE WHEN OLD.deleted_at IS NULL THEN -1 ELSE 0 END
        WHERE NOT EXISTS (SELECT 1 FROM tenant_placements p WHERE p.tenant_id = OLD.id)
    )
    WHERE gateway IS NOT NULL
    GROUP BY gateway
    ON CONFLICT (gateway_id)
    DO UPDATE SET held = held + excluded.held, revision = revision + 1;
END;

-- A channel written: its tenant's gateways.
CREATE TRIGGER gateway_loads_channel_insert AFTER INSERT ON channels
BEGIN
    INSERT INTO gateway_loads (gateway_id, held, revision)
    SELECT gateway, SUM(delta), 1
    FROM (
        SELECT CASE p.state WHEN 'placed' THEN p.gateway_id WHEN 'moving' THEN p.target_gateway_id END AS gateway, 0 AS delta
        FROM tenant_placements p WHERE p.tenant_id = NEW.tenant_id
        UNION ALL
        SELECT p.gateway_id, 0 FROM tenant_placements p WHERE p.tenant_id = NEW.tenant_id
        UNION ALL
        SELECT p.target_gateway_id, 0 FROM tenant_placements p WHERE p.tenant_id = NEW.tenant_id
        UNION ALL
        SELECT '00000000-0000-0000-0000-000000000000', 0
        WHERE NOT EXISTS (SELECT 1 FROM tenant_placements p WHERE p.tenant_id = NEW.tenant_id)
    )
    WHERE gateway IS NOT NULL
    GROUP BY gateway
    ON CONFLICT (gateway_id)
    DO UPDATE SET held = held + excluded.held, revision = revision + 1;
END;

CREATE TRIGGER gateway_loads_channel_update AFTER UPDATE ON channels
BEGIN
    INSERT INTO gateway_loads (gateway_id, held, revision)
    SELECT gateway, SUM(delta), 1
    FROM (
        SELECT CASE p.state WHEN 'placed' THEN p.gateway_id WHEN 'moving' THEN p.target_gateway_id END AS gateway, 0 AS delta
        FROM tenant_placements p WHERE p.tenant_id = NEW.tenant_id
        UNION ALL
        SELECT p.gateway_id, 0 FROM tenant_placements p WHERE p.tenant_id = NEW.tenant_id
        UNION ALL
        SELECT p.target_gateway_id, 0 FROM tenant_placements p WHERE p.tenant_id = NEW.tenant_id
        UNION ALL
        SELECT '00000000-0000-0000-0000-000000000000', 0
        WHERE NOT EXISTS (SELECT 1 FROM tenant_placements p WHERE p.tenant_id = NEW.tenant_id)
    )
    WHERE gateway IS NOT NULL
    GROUP BY gateway
    ON CONFLICT (gateway_id)
    DO UPDATE SET held = held + excluded.held, revision = revision + 1;
END;

CREATE TRIGGER gateway_loads_channel_delete AFTER DELETE ON channels
BEGIN
    INSERT INTO gateway_loads (gateway_id, held, revision)
    SELECT gateway, SUM(delta), 1
    FROM (
        SELECT CASE p.state WHEN 'placed' THEN p.gateway_id WHEN 'moving' THEN p.target_gateway_id END AS gateway, 0 AS delta
        FROM tenant_placements p WHERE p.tenant_id = OLD.tenant_id
        UNION ALL
        SELECT p.gateway_id, 0 FROM tenant_placements p WHERE p.tenant_id = OLD.tenant_id
        UNION ALL
        SELECT p.target_gateway_id, 0 FROM tenant_placements p WHERE p.tenant_id = OLD.tenant_id
        UNION ALL
        SELECT '00000000-0000-0000-0000-000000000000', 0
        WHERE NOT EXISTS (SELECT 1 FROM tenant_placements p WHERE p.tenant_id = OLD.tenant_id)
    )
    WHERE gateway IS NOT NULL
    GROUP BY gateway
    ON CONFLICT (gateway_id)
    DO UPDATE SET held = held + excluded.held, revision = revision + 1;
END;

-- A placement row written: a live tenant goes from its old holder (`default` without a row) to
-- its new one (none when unplaced); every gateway named before or after sees a new revision.
-- (When the tenant itself is deleted, the cascade runs after its row is gone: not live.)
CREATE TRIGGER gateway_loads_placement_insert AFTER INSERT ON tenant_placements
BEGIN
    INSERT INTO gateway_loads (gateway_id, held, revision)
    SELECT gateway, SUM(delta), 1
    FROM (
        SELECT '00000000-0000-0000-0000-000000000000' AS gateway, -(SELECT COUNT(*) FROM tenants t WHERE t.id = NEW.tenant_id AND t.deleted_at IS NULL) AS delta
        UNION ALL
        SELECT CASE NEW.state WHEN 'placed' THEN NEW.gateway_id WHEN 'moving' THEN NEW.target_gateway_id END, (SELECT COUNT(*) FROM tenants t WHERE t.id = NEW.tenant_id AND t.deleted_at IS NULL)
        UNION ALL
        SELECT NEW.gateway_id, 0
        UNION ALL
        SELECT NEW.target_gateway_id, 0
    )
    WHERE gateway IS NOT NULL
    GROUP BY gateway
    ON CONFLICT (gateway_id)
    DO UPDATE SET held = held + excluded.held, revision = revision + 1;
END;

CREATE TRIGGER gateway_loads_placement_update AFTER UPDATE ON tenant_placements
BEGIN
    INSERT INTO gateway_loads (gateway_id, held, revision)
    SELECT gateway, SUM(delta), 1
    FROM (
        SELECT CASE OLD.state WHEN 'placed' THEN OLD.gateway_id WHEN 'moving' THEN OLD.target_gateway_id END AS gateway, -(SELECT COUNT(*) FROM tenants t WHERE t.id = NEW.tenant_id AND t.deleted_at IS NULL) AS delta
        UNION ALL
        SELECT CASE NEW.state WHEN 'placed' THEN NEW.gateway_id WHEN 'moving' THEN NEW.target_gateway_id END, (SELECT COUNT(*) FROM tenants t WHERE t.id = NEW.tenant_id AND t.deleted_at IS NULL)
        UNION ALL
        SELECT OLD.gateway_id, 0
        UNION ALL
        SELECT OLD.target_gateway_id, 0
        UNION ALL
        SELECT NEW.gateway_id, 0
        UNION ALL
        SELECT NEW.target_gateway_id, 0
    )
    WHERE gateway IS NOT NULL
    GROUP BY gateway
    ON CONFLICT (gateway_id)
    DO UPDATE SET held = held + excluded.held, revision = revision + 1;
END;

CREATE TRIGGER gateway_loads_placement_delete AFTER DELETE ON tenant_placements
BEGIN
    INSERT INTO gateway_loads (gateway_id, held, revision)
    SELECT gateway, SUM(delta), 1
    FROM (
        SELECT CASE OLD.state WHEN 'placed' THEN OLD.gateway_id WHEN 'moving' THEN OLD.target_gateway_id END AS gateway, -(SELECT COUNT(*) FROM tenants t WHERE t.id = OLD.tenant_id AND t.deleted_at IS NULL) AS delta
        UNION ALL
        SELECT '00000000-0000-0000-0000-000000000000', (SELECT COUNT(*) FROM tenants t WHERE t.id = OLD.tenant_id AND t.deleted_at IS NULL)
        UNION ALL
        SELECT OLD.gateway_id, 0
        UNION ALL
        SELECT OLD.target_gateway_id, 0
    )
    WHERE gateway IS NOT NULL
    GROUP BY gateway
    ON CONFLICT (gateway_id)
    DO UPDATE SET held = held + excluded.held, revision = revision + 1;
END;

-- Backfilled from the rows as they are: every gateway gets a row (revision 0).
INSERT INTO gateway_loads (gateway_id, held, revision)
SELECT g.id, (
    SELECT COUNT(*)
    FROM tenants t LEFT JOIN tenant_placements p ON p.tenant_id = t.id
    WHERE t.deleted_at IS NULL
      AND CASE WHEN p.tenant_id IS NULL THEN '00000000-0000-0000-0000-000000000000'
               WHEN p.state = 'placed' THEN p.gateway_id
               WHEN p.state = 'moving' THEN p.target_gateway_id END = g.id
), 0
FROM gateways g;
