DROP TABLE webhook_endpoints;
DROP TABLE audit_log;
DROP TABLE sessions;
