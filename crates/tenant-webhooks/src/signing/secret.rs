//! The per-endpoint signing secret, in the Standard Webhooks `whsec_<base64>` format.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::Hmac;
use hmac::digest::KeyInit as _;
use hmac::digest::generic_array::GenericArray;
use rand::RngCore as _;
use sha2::Sha256;
use zeroize::Zeroizing;

/// HMAC-SHA256, the MAC of the `v1` signature scheme.
pub(crate) type HmacSha256 = Hmac<Sha256>;

/// The prefix every serialized signing secret starts with.
pub const SECRET_PREFIX: &str = "whsec_";
/// The fewest key bytes a secret may hold (the Standard Webhooks minimum).
pub const MIN_SECRET_BYTES: usize = 24;
/// The most key bytes a secret may hold (the Standard Webhooks maximum, one SHA-256 block).
pub const MAX_SECRET_BYTES: usize = 64;
/// How many random bytes [`SigningSecret::generate`] draws.
pub const GENERATED_SECRET_BYTES: usize = 32;

/// SHA-256 block size; HMAC zero-pads shorter keys to exactly this length (RFC 2104 §2).
const BLOCK_BYTES: usize = 64;

/// Why a string is not a valid signing secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The value does not start with `whsec_`.
    #[error("signing secret must start with `{SECRET_PREFIX}`")]
    MissingPrefix,
    /// The part after the prefix is not standard, padded base64.
    #[error("signing secret is not valid base64 after `{SECRET_PREFIX}`")]
    InvalidBase64,
    /// The decoded key is shorter or longer than the spec allows.
    #[error("signing secret must decode to {MIN_SECRET_BYTES}..={MAX_SECRET_BYTES} bytes, got {0}")]
    InvalidLength(usize),
}

/// A webhook signing secret: 24 to 64 random bytes, written as `whsec_` + base64.
///
/// It implements neither `Display` nor `Serialize`, and its `Debug` output is redacted; reading the
/// serialized form takes an explicit [`SigningSecret::expose`]. Key material is zeroed on drop.
#[derive(Clone)]
pub struct SigningSecret {
    /// The serialized `whsec_…` form.
    encoded: Zeroizing<String>,
    /// The key zero-padded to one SHA-256 block, so keying HMAC is infallible. HMAC pads short keys
    /// with zeros itself, so this yields exactly the MAC of the unpadded key.
    block: Zeroizing<[u8; BLOCK_BYTES]>,
}

impl SigningSecret {
    /// A fresh secret of [`GENERATED_SECRET_BYTES`] bytes from the thread-local CSPRNG.
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; GENERATED_SECRET_BYTES]);
        rand::rng().fill_bytes(key.as_mut_slice());
        Self::from_key(key.as_slice())
    }

    /// Parses and validates the `whsec_<base64>` form.
    pub fn parse(value: &str) -> Result<Self, SecretError> {
        let b64 = value
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::MissingPrefix)?;
        let key = Zeroizing::new(
            STANDARD
                .decode(b64)
                .map_err(|_| SecretError::InvalidBase64)?,
        );
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
            return Err(SecretError::InvalidLength(key.len()));
        }
        Ok(Self::from_key(&key))
    }

    /// The serialized `whsec_<base64>` form. Call this only where the secret must leave the
    /// process on purpose: encrypted storage, or a one-time display to the endpoint's owner.
    pub fn expose(&self) -> &str {
        &self.encoded
    }

    /// A fresh HMAC-SHA256 instance keyed with this secret.
    pub(crate) fn mac(&self) -> HmacSha256 {
        HmacSha256::new(GenericArray::from_slice(self.block.as_slice()))
    }

    /// Builds the secret from key bytes already known to be 1..=64 bytes long.
    fn from_key(key: &[u8]) -> Self {
        let mut block = Zeroizing::new([0u8; BLOCK_BYTES]);
        block[..key.len()].copy_from_slice(key);
        let mut encoded = Zeroizing::new(String::with_capacity(SECRET_PREFIX.len() + 88));
        encoded.push_str(SECRET_PREFIX);
        STANDARD.encode_string(key, &mut encoded);
        Self { encoded, block }
    }
}

impl FromStr for SigningSecret {
    type Err = SecretError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use hmac::Mac as _;

    use super::*;

    #[test]
    fn parse_round_trips_through_expose() {
        let raw = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let secret = SigningSecret::parse(raw).expect("valid");
        assert_eq!(secret.expose(), raw);
        assert_eq!(raw.parse::<SigningSecret>().expect("valid").expose(), raw);
    }

    #[test]
    fn generated_secrets_are_valid_and_distinct() {
        let a = SigningSecret::generate();
        let b = SigningSecret::generate();
        assert_ne!(a.expose(), b.expose());
        let reparsed = SigningSecret::parse(a.expose()).expect("generated secret parses");
        assert_eq!(reparsed.expose(), a.expose());
        let key = STANDARD
            .decode(&a.expose()[SECRET_PREFIX.len()..])
            .expect("base64");
        assert_eq!(key.len(), GENERATED_SECRET_BYTES);
    }

    #[test]
    fn parse_rejects_malformed_values() {
        assert_eq!(
            SigningSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err(),
            SecretError::MissingPrefix
        );
        assert_eq!(
            SigningSecret::parse("whsec_not base64!").unwrap_err(),
            SecretError::InvalidBase64
        );
        let short = format!("whsec_{}", STANDARD.encode([7u8; 23]));
        assert_eq!(
            SigningSecret::parse(&short).unwrap_err(),
            SecretError::InvalidLength(23)
        );
        let long = format!("whsec_{}", STANDARD.encode([7u8; 65]));
        assert_eq!(
            SigningSecret::parse(&long).unwrap_err(),
            SecretError::InvalidLength(65)
        );
        assert_eq!(
            SigningSecret::parse("whsec_").unwrap_err(),
            SecretError::InvalidLength(0)
        );
    }

    #[test]
    fn boundary_lengths_are_accepted() {
        for len in [MIN_SECRET_BYTES, MAX_SECRET_BYTES] {
            let raw = format!("whsec_{}", STANDARD.encode(vec![9u8; len]));
            assert!(SigningSecret::parse(&raw).is_ok(), "{len} bytes");
        }
    }

    #[test]
    fn padded_key_block_matches_plain_hmac_for_every_allowed_length() {
        for len in MIN_SECRET_BYTES..=MAX_SECRET_BYTES {
            let key: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let secret = SigningSecret::parse(&format!("whsec_{}", STANDARD.encode(&key)))
                .expect("valid length");
            let mut ours = secret.mac();
            ours.update(b"payload");
            let mut reference =
                <HmacSha256 as hmac::Mac>::new_from_slice(&key).expect("any key length");
            reference.update(b"payload");
            assert_eq!(
                ours.finalize().into_bytes(),
                reference.finalize().into_bytes(),
                "{len} bytes"
            );
        }
    }

    #[test]
    fn debug_is_redacted() {
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("valid");
        let printed = format!("{secret:?} {:?}", Some(&secret));
        assert!(!printed.contains("MfKQ9r8"), "{printed}");
        assert!(printed.contains("REDACTED"));
    }
}
