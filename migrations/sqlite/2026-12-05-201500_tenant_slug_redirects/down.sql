DROP TABLE tenant_slug_redirects;
