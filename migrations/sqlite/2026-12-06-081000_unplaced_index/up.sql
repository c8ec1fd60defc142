-- Tenants waiting for room (issue 25): the control plane asks often whether any tenant is
-- `unplaced` (on every change that frees room, and periodically) and places them oldest first.
-- A partial index holds only those rows, so the question costs one probe when none waits.
CREATE INDEX tenant_placements_unplaced ON tenant_placements (tenant_id) WHERE state = 'unplaced';
