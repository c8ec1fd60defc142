DROP TABLE channels;
DROP TABLE tenants;
