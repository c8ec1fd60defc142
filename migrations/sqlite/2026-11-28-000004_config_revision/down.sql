DROP TABLE config_revision;
