//! Bearer JWTs of an external OpenID Connect issuer, verified against its JSON Web Key Set
//! (RS256 or ES256) and mapped to a principal through the configured tenant and role claims.
//!
//! The key set is fetched on first use and cached; a token naming an unknown `kid` triggers a
//! refetch (key rotation), at most once per [`REFETCH_INTERVAL`], so forged `kid`s cannot turn
//! the server into a request amplifier against the issuer.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tenant_core::TenantId;

use super::config::{MappedRole, OidcSettings};
use crate::principal::{ActorRef, Principal};

/// Least time between two fetches of the key set.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest subject kept (it lands in the audit log).
const MAX_SUBJECT_LEN: usize = 255;

/// Why an external token was refused (logged at debug, never shown beyond "invalid token").
#[derive(Debug, thiserror::Error)]
#[error("external token refused: {0}")]
pub struct OidcError(pub String);

fn refuse(reason: impl Into<String>) -> OidcError {
    OidcError(reason.into())
}

/// A verification key and the one algorithm it is used with.
struct Key {
    alg: Algorithm,
    key: DecodingKey,
}

/// The configured issuer, its cached keys and an HTTP client to fetch them.
pub struct OidcVerifier {
    settings: OidcSettings,
    client: reqwest::Client,
    keys: RwLock<HashMap<String, Key>>,
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcVerifier")
            .field("issuer", &self.settings.issuer)
            .finish_non_exhaustive()
    }
}

/// The algorithm a JWK is for: RSA keys sign RS256, P-256 keys ES256; others are not accepted.
fn key_of(jwk: &Jwk) -> Option<Key> {
    let alg = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        _ => return None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(Key { alg, key })
}

impl OidcVerifier {
    /// A verifier for the configured issuer (nothing is fetched yet).
    pub fn new(settings: OidcSettings) -> Result<Self, OidcError> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| refuse(format!("http client: {e}")))?;
        Ok(Self {
            settings,
            client,
            keys: RwLock::new(HashMap::new()),
            last_fetch: tokio::sync::Mutex::new(None),
        })
    }

    fn lookup(&self, kid: &str, alg: Algorithm) -> Option<Result<DecodingKey, OidcError>> {
        let keys = self.keys.read().ok()?;
        let key = keys.get(kid)?;
        Some(if key.alg == alg {
            Ok(key.key.clone())
        } else {
            Err(refuse("algorithm does not match the key"))
        })
    }

    /// Refetches the key set unless that happened less than [`REFETCH_INTERVAL`] ago.
    async fn refetch(&self) -> Result<(), OidcError> {
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < REFETCH_INTERVAL) {
            return Ok(());
        }
        *last = Some(Instant::now());
        let body: Value = self
            .client
            .get(&self.settings.jwks_url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| refuse(format!("cannot fetch the key set: {e}")))?
            .json()
            .await
            .map_err(|e| refuse(format!("the key set is not JSON: {e}")))?;
        // Keys of unknown types are skipped, not fatal: the set may hold keys for other uses.
        let fresh: HashMap<String, Key> = body["keys"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|v| serde_json::from_value::<Jwk>(v.clone()).ok())
            .filter_map(|jwk| Some((jwk.common.key_id.clone()?, key_of(&jwk)?)))
            .collect();
        tracing::info!(oidc.keys = fresh.len(), "identity provider key set fetched");
        if let Ok(mut keys) = self.keys.write() {
            *keys = fresh;
        }
        Ok(())
    }

    /// Verifies an external token and maps it to a principal.
    pub async fn verify(&self, token: &str) -> Result<Principal, OidcError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| refuse(e.to_string()))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(refuse("algorithm not accepted"));
        }
        let kid = header.kid.ok_or_else(|| refuse("no kid"))?;
        let key = match self.lookup(&kid, header.alg) {
            Some(found) => found?,
            None => {
                self.refetch().await?;
                self.lookup(&kid, header.alg)
                    .ok_or_else(|| refuse("unknown key"))??
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.leeway = 30;
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|e| refuse(e.to_string()))?
            .claims;
        self.map_claims(&claims)
    }

    fn map_claims(&self, claims: &Value) -> Result<Principal, OidcError> {
        let sub = claims["sub"]
            .as_str()
            .filter(|s| !s.is_empty() && s.len() <= MAX_SUBJECT_LEN)
            .ok_or_else(|| refuse("bad sub"))?;
        let actor = ActorRef::External(sub.to_owned());
        // A role claim may be one string or a list (e.g. groups); the first mapped value wins.
        let role_values: Vec<&str> = match &claims[&self.settings.role_claim] {
            Value::String(s) => vec![s.as_str()],
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let role = role_values
            .iter()
            .find_map(|v| self.settings.role_map.get(*v))
            .ok_or_else(|| refuse("no mapped role"))?;
        match role {
            MappedRole::Operator => Ok(Principal::Operator { actor }),
            MappedRole::Tenant(role) => {
                let tenant_id: TenantId = claims[&self.settings.tenant_claim]
                    .as_str()
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(|| refuse("no tenant"))?;
                Ok(Principal::Tenant {
                    tenant_id,
                    role: *role,
                    actor,
                })
            }
        }
    }
}
