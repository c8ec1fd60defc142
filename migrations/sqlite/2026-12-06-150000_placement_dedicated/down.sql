ALTER TABLE tenant_placements DROP COLUMN dedicated;
