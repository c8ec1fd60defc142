//! People who log in: tenant users and operator users with argon2id passwords, the server's own
//! short-lived JWT access tokens with rotating refresh tokens, an optional external OpenID
//! Connect issuer, and brute-force protection. See `docs/security.md`.
//!
//! The authentication chain calls [`Identity::principal_from_bearer_jwt`] for a bearer that is
//! not a service token; everything else here serves the `/auth`, `/tenants/{id}/users` and
//! `/operators` routes.

use std::sync::OnceLock;

use tenant_core::Secret;

use crate::deployment::Deployment;
use crate::dev_secrets;
use crate::principal::Principal;

pub mod config;
pub mod credentials;
pub mod jwt;
pub mod login;
pub mod oidc;
pub mod password;
pub mod sessions;
pub mod throttle;
pub mod users;

pub use config::{IdentitySettings, MappedRole, OidcSettings};
use jwt::JwtKeys;
use oidc::OidcVerifier;

/// The file in the data directory holding the generated development JWT signing key.
pub const DEV_KEY_FILE: &str = "jwt.key";

/// Why user authentication could not be set up at start.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Production needs `SAAS_JWT_SECRET`.
    #[error("SAAS_JWT_SECRET must be set in production")]
    MissingSecret,
    /// The development key file could not be read or written.
    #[error("cannot load the JWT key file: {0}")]
    KeyFile(#[from] std::io::Error),
    /// A key could not be built.
    #[error("{0}")]
    Invalid(String),
}

/// The machinery of user authentication, shared by all workers.
#[derive(Debug)]
pub struct Identity {
    jwt: JwtKeys,
    oidc: Option<OidcVerifier>,
    access_ttl_secs: u64,
    refresh_ttl_secs: u64,
    dummy_hash: OnceLock<String>,
}

impl Identity {
    /// Builds it from its settings: the configured JWT secret, or in development one generated
    /// into `data_dir/jwt.key` (with a warning).
    pub fn build(ids: &IdentitySettings, deployment: &Deployment) -> Result<Self, IdentityError> {
        let jwt = match &ids.jwt_secret {
            Some(secret) => JwtKeys::new(secret.expose().as_bytes()),
            None if deployment.is_production() => return Err(IdentityError::MissingSecret),
            None => {
                let path = deployment.data_dir.join(DEV_KEY_FILE);
                let file = dev_secrets::load_or_generate(&path, 32)?;
                if file.generated {
                    tracing::warn!(
                        path = %path.display(),
                        "SAAS_JWT_SECRET is not set: generated a development signing key; set it in production"
                    );
                }
                JwtKeys::new(&file.key)
            }
        }
        .map_err(|e| IdentityError::Invalid(e.to_string()))?;
        let oidc = ids
            .oidc
            .clone()
            .map(OidcVerifier::new)
            .transpose()
            .map_err(|e| IdentityError::Invalid(e.to_string()))?;
        Ok(Self {
            jwt,
            oidc,
            access_ttl_secs: ids.access_token_ttl_secs,
            refresh_ttl_secs: ids.refresh_token_ttl_secs,
            dummy_hash: OnceLock::new(),
        })
    }

    /// The principal of a bearer JWT: one of this server's access tokens (HS256), or a token of
    /// the configured external issuer (RS256/ES256). `Ok(None)` when the bearer is not a JWT at
    /// all (the caller then answers 401 as for any unknown token).
    pub async fn principal_from_bearer_jwt(
        &self,
        token: &str,
    ) -> Result<Option<Principal>, AuthError> {
        if token.split('.').count() != 3 {
            return Ok(None);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError)?;
        match header.alg {
            jsonwebtoken::Algorithm::HS256 => match self.jwt.verify(token) {
                Ok(subject) => Ok(Some(subject.principal())),
                Err(e) => {
                    tracing::debug!(error = %e, "access token refused");
                    Err(AuthError)
                }
            },
            _ => match &self.oidc {
                Some(oidc) => match oidc.verify(token).await {
                    Ok(p) => Ok(Some(p)),
                    Err(e) => {
                        tracing::info!(error = %e, "external token refused");
                        Err(AuthError)
                    }
                },
                None => Err(AuthError),
            },
        }
    }

    /// The access-token keys.
    pub fn jwt(&self) -> &JwtKeys {
        &self.jwt
    }

    /// Lifetime of access tokens, in seconds.
    pub fn access_ttl_secs(&self) -> u64 {
        self.access_ttl_secs
    }

    /// Lifetime of refresh tokens, in seconds.
    pub fn refresh_ttl_secs(&self) -> u64 {
        self.refresh_ttl_secs
    }

    /// A valid argon2id hash of a random password, verified against when an account does not
    /// exist so that unknown emails cost the same time as wrong passwords. Made on first use.
    pub fn dummy_hash(&self) -> &str {
        self.dummy_hash.get_or_init(|| {
            let random = crate::tokens::generate_token("dummy_");
            password::hash(&Secret::new(random.expose())).unwrap_or_default()
        })
    }
}

/// A bearer JWT that is not acceptable (bad signature, expired, wrong issuer, audience or key).
#[derive(Debug, thiserror::Error)]
#[error("invalid bearer token")]
pub struct AuthError;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::Environment;

    fn deployment(environment: Environment, data_dir: &std::path::Path) -> Deployment {
        Deployment {
            environment,
            data_dir: data_dir.to_owned(),
        }
    }

    #[test]
    fn production_needs_a_configured_secret_development_generates_one() {
        let dir = std::env::temp_dir().join(format!("identity-{}", uuid::Uuid::new_v4()));
        let none = IdentitySettings::default();
        let prod = deployment(Environment::Production, &dir);
        assert!(matches!(
            Identity::build(&none, &prod),
            Err(IdentityError::MissingSecret)
        ));
        assert!(!dir.exists(), "nothing generated in production");

        let dev = deployment(Environment::Development, &dir);
        let first = Identity::build(&none, &dev).unwrap();
        assert!(dir.join("jwt.key").exists());
        // The same key on the next start: tokens survive restarts.
        let again = Identity::build(&none, &dev).unwrap();
        let subject = jwt::Subject::Operator {
            id: uuid::Uuid::new_v4(),
        };
        let token = first
            .jwt()
            .issue(subject, chrono::Utc::now().timestamp(), 60)
            .unwrap();
        assert_eq!(again.jwt().verify(&token).unwrap(), subject);
        std::fs::remove_dir_all(&dir).unwrap();

        let configured = IdentitySettings {
            jwt_secret: Some(Secret::new("0123456789abcdef0123456789abcdef")),
            ..IdentitySettings::default()
        };
        assert!(Identity::build(&configured, &prod).is_ok());
        assert!(!dir.exists(), "nothing generated with a configured secret");
    }
}
