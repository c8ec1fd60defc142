BEGIN;
SELECT pg_advisory_xact_lock(2512250001);
UPDATE tenant_placements SET move_revision = COALESCE(move_revision, 0) + 1 WHERE state = 'moving';
COMMIT;
