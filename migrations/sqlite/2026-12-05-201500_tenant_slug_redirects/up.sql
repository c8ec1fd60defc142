-- A tenant's former slugs: when a tenant's slug changes, the old one is kept here (in the same
-- transaction as the change) so that `{old-slug}.{SAAS_BASE_DOMAIN}` answers 308 to the tenant's
-- current host until `expires_at` (`SAAS_SLUG_REDIRECT_TTL_SECS`, 30 days by default). A tenant
-- that holds the slug takes precedence over a row here; a rename to a slug removes its row.
-- Rows go with their tenant and are purged after expiry by the server's background maintenance.
CREATE TABLE tenant_slug_redirects (
    old_slug    TEXT PRIMARY KEY NOT NULL,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    created_at  TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL
);
CREATE INDEX tenant_slug_redirects_tenant_id ON tenant_slug_redirects (tenant_id);
CREATE INDEX tenant_slug_redirects_expires_at ON tenant_slug_redirects (expires_at);
