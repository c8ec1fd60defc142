ALTER TABLE gateways DROP COLUMN fencing;
