//! The configuration of user authentication: the JWT signing secret, token lifetimes and the
//! optional external identity provider. The server reads it from the environment
//! (`tenant_server::settings::identity`, documented in `docs/configuration.md`).

use std::collections::HashMap;

use tenant_core::{Role, Secret};

/// How access and refresh tokens are made.
#[derive(Debug, Clone)]
pub struct IdentitySettings {
    /// HS256 key of access tokens (`SAAS_JWT_SECRET`); generated in development when absent.
    pub jwt_secret: Option<Secret>,
    /// Lifetime of an access token, in seconds.
    pub access_token_ttl_secs: u64,
    /// Lifetime of a refresh token, in seconds.
    pub refresh_token_ttl_secs: u64,
    /// The external identity provider, when configured.
    pub oidc: Option<OidcSettings>,
}

impl Default for IdentitySettings {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            oidc: None,
        }
    }
}

/// What an external role claim value grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MappedRole {
    /// A role within the tenant named by the tenant claim.
    Tenant(Role),
    /// Operator: every tenant.
    Operator,
}

/// An OpenID Connect issuer whose bearer JWTs the API accepts.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// The exact `iss` expected.
    pub issuer: String,
    /// The `aud` expected.
    pub audience: String,
    /// Where its JSON Web Key Set is served.
    pub jwks_url: String,
    /// The claim holding the tenant id (UUID).
    pub tenant_claim: String,
    /// The claim holding the role.
    pub role_claim: String,
    /// Role claim values and what they grant; by default `owner`, `admin`, `member` and
    /// `operator` map to themselves.
    pub role_map: HashMap<String, MappedRole>,
}
