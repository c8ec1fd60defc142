//! Operator authentication: bearer tokens checked against stored SHA-256 hashes.
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
use tenant_store::{Database, StoreResult, operator_tokens};

/// The prefix of generated operator tokens.
pub const OPERATOR_TOKEN_PREFIX: &str = "msop_";
/// The prefix of tenant API keys.
pub const API_KEY_PREFIX: &str = "msk_live_";
/// The name under which the generated first operator token is stored.
pub const BOOTSTRAP_TOKEN_NAME: &str = "bootstrap";

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

/// The operator tokens this process accepts.
#[derive(Clone, Default)]
pub struct OperatorAuth {
    hashes: HashSet<[u8; 32]>,
}

impl std::fmt::Debug for OperatorAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorAuth")
            .field("tokens", &self.hashes.len())
            .finish()
    }
}

impl OperatorAuth {
    /// Whether `token` is an operator token.
    pub fn verify(&self, token: &str) -> bool {
        self.hashes.contains(&hash_token(token))
    }
}

/// Loads the accepted operator tokens: the configured one (`SAAS_ADMIN_TOKEN`) and those stored
/// in the database. With neither, generates a token, stores its hash and returns it so the caller
/// can show it once.
pub fn bootstrap(
    db: &Database,
    configured: Option<&Secret>,
) -> StoreResult<(OperatorAuth, Option<Secret>)> {
    let mut conn = db.get()?;
    let mut hashes: HashSet<[u8; 32]> = decode_hashes(&operator_tokens::hashes(&mut conn)?);
    let mut generated = None;
    if let Some(token) = configured {
        hashes.insert(hash_token(token.expose()));
    } else if hashes.is_empty() {
        let token = generate_token(OPERATOR_TOKEN_PREFIX);
        let hash = hash_token_hex(token.expose());
        if operator_tokens::insert_if_absent(
            &mut conn,
            BOOTSTRAP_TOKEN_NAME,
            &hash,
            tenant_core::now(),
        )? {
            generated = Some(token);
        }
        // Whether we or a concurrent replica created it, the database now holds it.
        hashes.extend(decode_hashes(&operator_tokens::hashes(&mut conn)?));
    }
    Ok((OperatorAuth { hashes }, generated))
}

fn decode_hashes(stored: &[String]) -> HashSet<[u8; 32]> {
    stored
        .iter()
        .filter_map(|h| <[u8; 32]>::try_from(hex::decode(h).ok()?).ok())
        .collect()
}

/// The bearer token of an `Authorization` header value.
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
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

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }
}
