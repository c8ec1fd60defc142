//! The server's own access tokens: short-lived HS256 JWTs naming a tenant user or an operator
//! user, signed with `SAAS_JWT_SECRET`.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tenant_core::{Role, TenantId};
use uuid::Uuid;

use crate::principal::{ActorRef, Principal};

/// The `iss` of tokens this server issues.
pub const ISSUER: &str = "moltbot-saas";
/// The `aud` of tokens this server issues.
pub const AUDIENCE: &str = "moltbot-saas-api";

/// What an access token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user's id.
    pub sub: String,
    /// The tenant, for tenant users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// `owner`, `admin`, `member` or `operator`.
    pub role: String,
    /// `user` (a tenant user) or `operator` (an operator user).
    pub kind: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// Always [`ISSUER`].
    pub iss: String,
    /// Always [`AUDIENCE`].
    pub aud: String,
    /// A unique id.
    pub jti: String,
}

/// The authenticated user an access token is issued to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A tenant user with its role.
    TenantUser {
        /// The user.
        id: Uuid,
        /// The tenant.
        tenant_id: TenantId,
        /// The role.
        role: Role,
    },
    /// An operator user.
    Operator {
        /// The operator.
        id: Uuid,
    },
}

/// Signing and verification keys of access tokens.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys([REDACTED])")
    }
}

/// Why a token was refused (never shown to the client beyond "invalid token").
#[derive(Debug, thiserror::Error)]
#[error("invalid access token: {0}")]
pub struct JwtError(pub String);

impl JwtKeys {
    /// Keys from the HS256 secret.
    pub fn new(secret: &[u8]) -> Result<Self, JwtError> {
        let encoding = EncodingKey::from_secret(secret).map_err(|e| JwtError(e.to_string()))?;
        let decoding = DecodingKey::from_secret(secret).map_err(|e| JwtError(e.to_string()))?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Ok(Self {
            encoding,
            decoding,
            validation,
        })
    }

    /// Issues an access token for `subject` valid for `ttl_secs` from `now` (epoch seconds).
    pub fn issue(&self, subject: Subject, now: i64, ttl_secs: u64) -> Result<String, JwtError> {
        let (sub, tenant, role, kind) = match subject {
            Subject::TenantUser {
                id,
                tenant_id,
                role,
            } => (id, Some(tenant_id.to_string()), role.as_str(), "user"),
            Subject::Operator { id } => (id, None, "operator", "operator"),
        };
        let claims = AccessClaims {
            sub: sub.to_string(),
            tenant,
            role: role.to_owned(),
            kind: kind.to_owned(),
            iat: now,
            exp: now.saturating_add(i64::try_from(ttl_secs).unwrap_or(i64::MAX)),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            jti: Uuid::new_v4().simple().to_string(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| JwtError(e.to_string()))
    }

    /// Verifies signature, expiry, issuer and audience, and returns the bearer's subject.
    pub fn verify(&self, token: &str) -> Result<Subject, JwtError> {
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map_err(|e| JwtError(e.to_string()))?;
        let c = data.claims;
        let id: Uuid = c.sub.parse().map_err(|_| JwtError("bad sub".into()))?;
        match (c.kind.as_str(), c.tenant) {
            ("user", Some(tenant)) => Ok(Subject::TenantUser {
                id,
                tenant_id: tenant.parse().map_err(|_| JwtError("bad tenant".into()))?,
                role: c.role.parse().map_err(|_| JwtError("bad role".into()))?,
            }),
            ("operator", None) if c.role == "operator" => Ok(Subject::Operator { id }),
            _ => Err(JwtError("unknown token kind".into())),
        }
    }
}

impl Subject {
    /// The principal a request bearing this subject's token acts as.
    pub fn principal(self) -> Principal {
        match self {
            Subject::TenantUser {
                id,
                tenant_id,
                role,
            } => Principal::Tenant {
                tenant_id,
                role,
                actor: ActorRef::User(id),
            },
            Subject::Operator { id } => Principal::Operator {
                actor: ActorRef::OperatorUser(id),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let keys = JwtKeys::new(&[7u8; 32]).unwrap();
        let now = chrono::Utc::now().timestamp();
        let subject = Subject::TenantUser {
            id: Uuid::new_v4(),
            tenant_id: TenantId::random(),
            role: Role::Admin,
        };
        let token = keys.issue(subject, now, 900).unwrap();
        assert_eq!(keys.verify(&token).unwrap(), subject);

        let op = Subject::Operator { id: Uuid::new_v4() };
        assert_eq!(keys.verify(&keys.issue(op, now, 900).unwrap()).unwrap(), op);

        let expired = keys.issue(subject, now - 3600, 900).unwrap();
        assert!(keys.verify(&expired).is_err());

        let other = JwtKeys::new(&[8u8; 32]).unwrap();
        assert!(other.verify(&token).is_err(), "wrong key");
        assert!(keys.verify("not.a.jwt").is_err());
        assert!(!format!("{keys:?}").contains('7'));
    }
}
