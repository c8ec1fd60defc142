-- A revision of the gateway config, bumped in the same transaction as every change that
-- affects it, so every replica can tell whether its cached rendering is current with one
-- tiny query. The counter is split over 16 slots: a writer bumps one slot at random and the
-- revision is their sum, so concurrent writers rarely wait on the same row lock, while every
-- commit still raises the sum that later readers see.
CREATE TABLE config_revision (
    slot      INTEGER PRIMARY KEY NOT NULL CHECK (slot >= 0 AND slot < 16),
    revision  BIGINT NOT NULL
);
INSERT INTO config_revision (slot, revision) VALUES
    (0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (6, 0), (7, 0),
    (8, 0), (9, 0), (10, 0), (11, 0), (12, 0), (13, 0), (14, 0), (15, 0);
