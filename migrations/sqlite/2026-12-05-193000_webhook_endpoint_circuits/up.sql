-- Fair webhook delivery (issue 26): each endpoint's circuit, shared by every dispatcher process
-- and read by the API, and an index that lets a claim visit every endpoint with pending
-- deliveries and take the few oldest due of each, without reading a whole backlog.

-- No row: closed with no failure. `state` is closed | open | half-open; `failures` counts
-- consecutive timeouts and connection failures; `opens` consecutive openings (the backoff's
-- exponent); `retry_at` is when an open circuit may be probed, or when a half-open probe's claim
-- lapses; `probe_owner` the dispatcher probing it.
CREATE TABLE webhook_endpoint_circuits (
    endpoint_id  TEXT PRIMARY KEY NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    state        TEXT NOT NULL,
    failures     INTEGER NOT NULL,
    opens        INTEGER NOT NULL,
    retry_at     TIMESTAMP,
    probe_owner  TEXT,
    updated_at   TIMESTAMP NOT NULL
);
CREATE INDEX webhook_endpoint_circuits_state_retry_at_idx ON webhook_endpoint_circuits (state, retry_at);

CREATE INDEX webhook_deliveries_status_endpoint_id_next_attempt_at_idx
    ON webhook_deliveries (status, endpoint_id, next_attempt_at);
