-- Leases and failover (issue 25, second part). `fencing`: whether the gateway's last heartbeat
-- declared that whatever keeps its config (`config sync`) fences it: writes a document with no
-- tenants when it cannot renew its lease for a lease period. Only such a gateway's expired
-- lease completes moves away from it or fails its tenants over (docs/fleet.md).
ALTER TABLE gateways ADD COLUMN fencing BOOLEAN NOT NULL DEFAULT FALSE;
