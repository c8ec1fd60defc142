\set i (:client_id % 10) * 4 + 1
\set j (:client_id % 10) * 4 + 2
\set k (:client_id % 10) * 4 + 3
BEGIN;
UPDATE channels SET updated_at = now() WHERE tenant_id = 't' || :i;
UPDATE channels SET updated_at = now() WHERE tenant_id = 't' || :j;
COMMIT;
BEGIN;
UPDATE channels SET updated_at = now() WHERE tenant_id = 't' || :j;
UPDATE channels SET updated_at = now() WHERE tenant_id = 't' || :i;
COMMIT;
UPDATE channels SET updated_at = now() WHERE tenant_id IN ('t' || :i, 't' || :j, 't' || :k);
BEGIN;
UPDATE tenants SET updated_at = now() WHERE id = 't' || :k;
UPDATE channels SET updated_at = now() WHERE tenant_id = 't' || :i;
COMMIT;
