DROP TABLE tenant_placements;
DROP TABLE gateways;
