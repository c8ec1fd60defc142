-- The gateway fleet (issue 25). A gateway is one OpenClaw process that fetches its own document
-- with its own token (stored only as a keyed hash, like API keys). The built-in gateway
-- `default` (id all zeros) is the server's `SAAS_GATEWAY_TOKEN`: it has no stored token, no
-- capacity limit until an operator sets one, and holds every tenant without a placement row,
-- so a single-gateway setup needs no row anywhere.
CREATE TABLE gateways (
    id                 TEXT PRIMARY KEY NOT NULL,
    name               TEXT NOT NULL,
    kind               TEXT NOT NULL CHECK (kind IN ('shared', 'dedicated')),
    capacity           BIGINT,
    draining           BOOLEAN NOT NULL DEFAULT FALSE,
    token_hash         TEXT,
    token_prefix       TEXT,
    created_at         TIMESTAMP NOT NULL,
    updated_at         TIMESTAMP NOT NULL,
    last_heartbeat_at  TIMESTAMP,
    served_etag        TEXT,
    served_revision    BIGINT,
    CONSTRAINT gateways_name_key UNIQUE (name),
    CONSTRAINT gateways_token_hash_key UNIQUE (token_hash)
);
INSERT INTO gateways (id, name, kind, capacity, draining, created_at, updated_at)
VALUES ('00000000-0000-0000-0000-000000000000', 'default', 'shared', NULL, FALSE,
        CURRENT_TIMESTAMP, CURRENT_TIMESTAMP);

-- Where a tenant is, when not simply on `default`: `placed` on `gateway_id`, `moving` from
-- `gateway_id` to `target_gateway_id` (in neither gateway's document until the source has
-- acknowledged a document without it), or `unplaced` (no gateway had room). `pinned`: put there
-- by an operator, not by the placement rule. `move_revision`: the config revision read right
-- after the move committed; only a document rendered at that revision or later (so without the
-- tenant) acknowledges the move.
CREATE TABLE tenant_placements (
    tenant_id          TEXT PRIMARY KEY NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    gateway_id         TEXT REFERENCES gateways (id),
    target_gateway_id  TEXT REFERENCES gateways (id),
    state              TEXT NOT NULL CHECK (state IN ('placed', 'moving', 'unplaced')),
    pinned             BOOLEAN NOT NULL DEFAULT FALSE,
    moving_since       TIMESTAMP,
    move_revision      BIGINT,
    updated_at         TIMESTAMP NOT NULL
);
CREATE INDEX tenant_placements_gateway_id ON tenant_placements (gateway_id);
CREATE INDEX tenant_placements_target_gateway_id ON tenant_placements (target_gateway_id);
