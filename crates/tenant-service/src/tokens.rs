//! Tokens: how every bearer token, API key, refresh and invite token is generated and hashed,
//! and service authentication (operator and gateway tokens checked against stored SHA-256
//! hashes, bootstrapped on first start).
//!
//! Tokens are 256-bit random values, so a fast hash is enough: there is nothing to brute-force.
//! (Human passwords, a later addition, use argon2id.) The hashes are loaded at start; a token is
//! checked by hashing it and looking the hash up, which takes constant time in the token's value.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use tenant_core::Secret;
use tenant_store::access_tokens::{self, TokenScope};
use tenant_store::{Database, StoreResult};

/// The prefix of generated operator tokens.
pub const OPERATOR_TOKEN_PREFIX: &str = "msop_";
/// The prefix of tenant API keys.
pub const API_KEY_PREFIX: &str = "msk_live_";

/// SHA-256 of a token.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// SHA-256 of a token, as stored (lowercase hex).
pub fn hash_token_hex(token: &str) -> String {
    hex::encode(hash_token(token))
}

/// A new random token: `prefix` and 32 random bytes in URL-safe base64.
pub fn generate_token(prefix: &str) -> Secret {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    Secret::new(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// The prefix of generated gateway tokens.
pub const GATEWAY_TOKEN_PREFIX: &str = "msgw_";

/// The service tokens this process accepts, by scope.
#[derive(Clone, Default)]
pub struct ServiceAuth {
    operator: HashSet<[u8; 32]>,
    gateway: HashSet<[u8; 32]>,
}

impl std::fmt::Debug for ServiceAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAuth")
            .field("operator_tokens", &self.operator.len())
            .field("gateway_tokens", &self.gateway.len())
            .finish()
    }
}

impl ServiceAuth {
    /// The scope of `token`, if it is a service token.
    pub fn scope_of(&self, token: &str) -> Option<TokenScope> {
        let hash = hash_token(token);
        if self.operator.contains(&hash) {
            Some(TokenScope::Operator)
        } else if self.gateway.contains(&hash) {
            Some(TokenScope::Gateway)
        } else {
            None
        }
    }
}

/// A token generated on first start, to be shown once.
#[derive(Debug)]
pub struct GeneratedToken {
    /// What it is for.
    pub scope: TokenScope,
    /// The token.
    pub token: Secret,
}

/// Loads the accepted service tokens of both scopes: the configured one (`SAAS_ADMIN_TOKEN`,
/// `SAAS_GATEWAY_TOKEN`) and those stored in the database. A scope with neither gets a generated
/// token whose hash is stored; it is returned so the caller can show it once.
pub fn bootstrap(
    db: &Database,
    operator: Option<&Secret>,
    gateway: Option<&Secret>,
) -> StoreResult<(ServiceAuth, Vec<GeneratedToken>)> {
    let mut conn = db.get()?;
    let mut generated = Vec::new();
    let mut load = |scope: TokenScope,
                    configured: Option<&Secret>,
                    prefix: &str|
     -> StoreResult<HashSet<[u8; 32]>> {
        let mut hashes = decode_hashes(&access_tokens::hashes(&mut conn, scope)?);
        if let Some(token) = configured {
            hashes.insert(hash_token(token.expose()));
        } else if hashes.is_empty() {
            let token = generate_token(prefix);
            let name = format!("bootstrap-{}", scope.as_str());
            let hash = hash_token_hex(token.expose());
            if access_tokens::insert_if_absent(&mut conn, scope, &name, &hash, tenant_core::now())?
            {
                generated.push(GeneratedToken { scope, token });
            }
            // Whether we or a concurrent replica created it, the database now holds it.
            hashes.extend(decode_hashes(&access_tokens::hashes(&mut conn, scope)?));
        }
        Ok(hashes)
    };
    let operator = load(TokenScope::Operator, operator, OPERATOR_TOKEN_PREFIX)?;
    let gateway = load(TokenScope::Gateway, gateway, GATEWAY_TOKEN_PREFIX)?;
    Ok((ServiceAuth { operator, gateway }, generated))
}

fn decode_hashes(stored: &[String]) -> HashSet<[u8; 32]> {
    stored
        .iter()
        .filter_map(|h| <[u8; 32]>::try_from(hex::decode(h).ok()?).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_long_and_distinct() {
        let a = generate_token(API_KEY_PREFIX);
        let b = generate_token(API_KEY_PREFIX);
        assert!(a.expose().starts_with("msk_live_"));
        assert_eq!(a.expose().len(), "msk_live_".len() + 43);
        assert_ne!(a, b);
    }
}
