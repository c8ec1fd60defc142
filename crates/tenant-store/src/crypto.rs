//! Encryption at rest: a key ring and self-describing sealed envelopes (XChaCha20-Poly1305).
//!
//! A [`KeyRing`] holds named 32-byte keys; the first is the active one, used for every new seal,
//! and the others only open what they sealed before a rotation. [`KeyRing::seal`] produces an
//! envelope `v1.<key id>.<nonce>.<ciphertext>` (nonce and ciphertext in unpadded URL-safe
//! base64), which fits a TEXT column and names the key that opens it. The caller passes
//! associated data that binds the envelope to its row, so an envelope copied elsewhere does not
//! open. Nonces are 24 random bytes, safe to draw at random for any number of seals.
//!
//! Key bytes are zeroized on drop and never appear in `Debug` output or error messages.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use zeroize::Zeroizing;

/// The envelope format this module writes.
pub const ENVELOPE_VERSION: &str = "v1";
/// Length of a key, in bytes.
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const MAX_ID_LEN: usize = 32;

/// Why a key ring could not be built or an envelope could not be opened. Messages name key ids
/// and positions, never key material or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The key ring specification is unusable.
    #[error("{0}")]
    InvalidKeyRing(String),
    /// The stored text is not an envelope this version understands.
    #[error("malformed envelope: {0}")]
    Malformed(&'static str),
    /// The envelope names a key the ring does not hold.
    #[error("sealed under key `{0}`, which is not in the key ring")]
    UnknownKey(String),
    /// Authentication failed: wrong key, tampered ciphertext, or an envelope of another row.
    #[error("authentication failed (tampered, or sealed for another row)")]
    Refused,
}

struct Key {
    id: String,
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

/// Named keys; the first is active. Cheap to clone behind an `Arc`.
pub struct KeyRing {
    keys: Vec<Key>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("ids", &self.ids().collect::<Vec<_>>())
            .field("keys", &"[REDACTED]")
            .finish()
    }
}

/// Whether `id` is a valid key id: 1–32 of `[A-Za-z0-9_-]`.
pub fn is_valid_key_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl KeyRing {
    /// A ring of `(id, key)` pairs, the first active. Ids must be valid and distinct, keys 32
    /// bytes.
    pub fn new<I>(keys: I) -> Result<Self, CryptoError>
    where
        I: IntoIterator<Item = (String, Zeroizing<Vec<u8>>)>,
    {
        let mut ring = Vec::new();
        for (position, (id, bytes)) in keys.into_iter().enumerate() {
            let n = position + 1;
            if !is_valid_key_id(&id) {
                return Err(CryptoError::InvalidKeyRing(format!(
                    "entry {n}: the key id must be 1-{MAX_ID_LEN} of A-Z, a-z, 0-9, '_' or '-'"
                )));
            }
            if ring.iter().any(|k: &Key| k.id == id) {
                return Err(CryptoError::InvalidKeyRing(format!(
                    "entry {n}: key id `{id}` appears twice"
                )));
            }
            let mut key = Zeroizing::new([0u8; KEY_LEN]);
            if bytes.len() != KEY_LEN {
                return Err(CryptoError::InvalidKeyRing(format!(
                    "key `{id}` is {} bytes, expected {KEY_LEN}",
                    bytes.len()
                )));
            }
            key.copy_from_slice(&bytes);
            ring.push(Key { id, bytes: key });
        }
        if ring.is_empty() {
            return Err(CryptoError::InvalidKeyRing("no keys given".into()));
        }
        Ok(Self { keys: ring })
    }

    /// Parses `id:base64key,id2:base64key` (standard base64 of 32 bytes; whitespace around
    /// entries is ignored). The first entry is the active key.
    pub fn parse(spec: &str) -> Result<Self, CryptoError> {
        let mut keys = Vec::new();
        for (position, entry) in spec.split(',').map(str::trim).enumerate() {
            let n = position + 1;
            if entry.is_empty() {
                continue;
            }
            let Some((id, b64)) = entry.split_once(':') else {
                return Err(CryptoError::InvalidKeyRing(format!(
                    "entry {n} is not `id:base64key`"
                )));
            };
            let bytes = STANDARD.decode(b64.trim()).map_err(|_| {
                CryptoError::InvalidKeyRing(format!("entry {n}: the key is not valid base64"))
            })?;
            keys.push((id.trim().to_owned(), Zeroizing::new(bytes)));
        }
        Self::new(keys)
    }

    /// A fresh random key as a `id:base64key` entry, for the operator to configure.
    pub fn generate_entry(id: &str) -> Result<Zeroizing<String>, CryptoError> {
        if !is_valid_key_id(id) {
            return Err(CryptoError::InvalidKeyRing(format!(
                "the key id must be 1-{MAX_ID_LEN} of A-Z, a-z, 0-9, '_' or '-'"
            )));
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rand::rng().fill_bytes(&mut *key);
        Ok(Zeroizing::new(format!("{id}:{}", STANDARD.encode(*key))))
    }

    /// The id of the active key (the one new seals use).
    pub fn active_id(&self) -> &str {
        // `new` refuses an empty ring.
        self.keys.first().map_or("", |k| k.id.as_str())
    }

    /// Every key id, the active one first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.id.as_str())
    }

    /// Whether the ring holds a key of this id.
    pub fn contains(&self, id: &str) -> bool {
        self.keys.iter().any(|k| k.id == id)
    }

    fn cipher(key: &Key) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&*key.bytes).into())
    }

    /// Seals `plaintext` under the active key, bound to `aad`. Returns the envelope text.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<String, CryptoError> {
        let key = self
            .keys
            .first()
            .ok_or_else(|| CryptoError::InvalidKeyRing("no keys given".into()))?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let full_aad = bind(aad, &key.id);
        let ct = Self::cipher(key)
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &full_aad,
                },
            )
            .map_err(|_| CryptoError::Refused)?;
        Ok(format!(
            "{ENVELOPE_VERSION}.{}.{}.{}",
            key.id,
            URL_SAFE_NO_PAD.encode(nonce),
            URL_SAFE_NO_PAD.encode(ct)
        ))
    }

    /// Opens an envelope made by [`KeyRing::seal`] with the same `aad`.
    pub fn open(&self, aad: &[u8], envelope: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let parsed = Envelope::parse(envelope)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == parsed.key_id)
            .ok_or_else(|| CryptoError::UnknownKey(parsed.key_id.to_owned()))?;
        let nonce = URL_SAFE_NO_PAD
            .decode(parsed.nonce)
            .map_err(|_| CryptoError::Malformed("the nonce is not base64"))?;
        if nonce.len() != NONCE_LEN {
            return Err(CryptoError::Malformed("the nonce has the wrong length"));
        }
        let ct = URL_SAFE_NO_PAD
            .decode(parsed.ciphertext)
            .map_err(|_| CryptoError::Malformed("the ciphertext is not base64"))?;
        let full_aad = bind(aad, &key.id);
        Self::cipher(key)
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &ct,
                    aad: &full_aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Refused)
    }
}

/// The associated data actually authenticated: the format version, the key id and the caller's
/// row identity, so neither the version nor the key id can be swapped either.
fn bind(aad: &[u8], key_id: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(aad.len() + key_id.len() + 24);
    v.extend_from_slice(b"moltbot-saas/");
    v.extend_from_slice(ENVELOPE_VERSION.as_bytes());
    v.push(0);
    v.extend_from_slice(key_id.as_bytes());
    v.push(0);
    v.extend_from_slice(aad);
    v
}

/// The parts of an envelope, borrowed from its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// The id of the key that sealed it.
    pub key_id: &'a str,
    nonce: &'a str,
    ciphertext: &'a str,
}

impl<'a> Envelope<'a> {
    /// Splits `v1.<key id>.<nonce>.<ciphertext>`; checks the version and the key id's form.
    pub fn parse(text: &'a str) -> Result<Self, CryptoError> {
        let mut parts = text.split('.');
        let (Some(version), Some(key_id), Some(nonce), Some(ciphertext), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(CryptoError::Malformed(
                "expected `v1.<key id>.<nonce>.<ciphertext>`",
            ));
        };
        if version != ENVELOPE_VERSION {
            return Err(CryptoError::Malformed("unsupported envelope version"));
        }
        if !is_valid_key_id(key_id) {
            return Err(CryptoError::Malformed("invalid key id"));
        }
        Ok(Self {
            key_id,
            nonce,
            ciphertext,
        })
    }

    /// Whether `text` looks like an envelope (rather than a legacy plaintext value).
    pub fn is_envelope(text: &str) -> bool {
        text.starts_with("v1.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(spec: &[(&str, u8)]) -> KeyRing {
        KeyRing::new(
            spec.iter()
                .map(|(id, b)| ((*id).to_owned(), Zeroizing::new(vec![*b; KEY_LEN]))),
        )
        .unwrap()
    }

    #[test]
    fn seals_and_opens_with_the_same_aad() {
        let r = ring(&[("k1", 1)]);
        let env = r.seal(b"row-1", b"secret value").unwrap();
        assert!(env.starts_with("v1.k1."), "{env}");
        assert!(!env.contains("secret"));
        assert_eq!(&**r.open(b"row-1", &env).unwrap(), b"secret value");
        // Another row's identity does not open it.
        assert_eq!(r.open(b"row-2", &env), Err(CryptoError::Refused));
        // Two seals of the same value differ (random nonces).
        assert_ne!(env, r.seal(b"row-1", b"secret value").unwrap());
    }

    #[test]
    fn tampering_is_refused() {
        let r = ring(&[("k1", 1), ("k2", 2)]);
        let env = r.seal(b"a", b"payload").unwrap();
        let parts: Vec<&str> = env.split('.').collect();
        // A flipped ciphertext byte.
        let mut ct = URL_SAFE_NO_PAD.decode(parts[3]).unwrap();
        ct[0] ^= 1;
        let flipped = format!("v1.k1.{}.{}", parts[2], URL_SAFE_NO_PAD.encode(&ct));
        assert_eq!(r.open(b"a", &flipped), Err(CryptoError::Refused));
        // Relabelled as sealed by the other key.
        let relabelled = env.replacen("v1.k1.", "v1.k2.", 1);
        assert_eq!(r.open(b"a", &relabelled), Err(CryptoError::Refused));
        // Unknown key, bad version, bad shape.
        assert_eq!(
            r.open(b"a", &env.replacen("v1.k1.", "v1.k9.", 1)),
            Err(CryptoError::UnknownKey("k9".into()))
        );
        assert!(matches!(
            r.open(b"a", &env.replacen("v1.", "v2.", 1)),
            Err(CryptoError::Malformed(_))
        ));
        assert!(matches!(
            r.open(b"a", "{\"x\":1}"),
            Err(CryptoError::Malformed(_))
        ));
        assert!(matches!(
            r.open(b"a", "v1.k1.!!.AA"),
            Err(CryptoError::Malformed(_))
        ));
    }

    #[test]
    fn older_keys_open_and_the_first_seals() {
        let old = ring(&[("k1", 1)]);
        let env = old.seal(b"a", b"x").unwrap();
        let rotated = ring(&[("k2", 2), ("k1", 1)]);
        assert_eq!(rotated.active_id(), "k2");
        assert_eq!(&**rotated.open(b"a", &env).unwrap(), b"x");
        assert!(rotated.seal(b"a", b"x").unwrap().starts_with("v1.k2."));
        let k2_only = ring(&[("k2", 2)]);
        assert_eq!(
            k2_only.open(b"a", &env),
            Err(CryptoError::UnknownKey("k1".into()))
        );
    }

    #[test]
    fn parse_checks_ids_and_keys_without_echoing_them() {
        let k = STANDARD.encode([7u8; KEY_LEN]);
        let r = KeyRing::parse(&format!(" main:{k} , old_1:{k}")).unwrap();
        assert_eq!(r.ids().collect::<Vec<_>>(), ["main", "old_1"]);
        assert!(!format!("{r:?}").contains(&k));
        for bad in [
            String::new(),
            "nokey".to_owned(),
            format!("bad id:{k}"),
            format!("a:{k},a:{k}"),
            "a:bm90IDMyIGJ5dGVz".to_owned(),
            "a:***".to_owned(),
            format!("{}:{k}", "x".repeat(33)),
        ] {
            let e = KeyRing::parse(&bad).unwrap_err().to_string();
            assert!(!e.contains(&k) && !e.contains("bm90"), "{e}");
        }
        let entry = KeyRing::generate_entry("k3").unwrap();
        assert_eq!(KeyRing::parse(&entry).unwrap().active_id(), "k3");
        assert!(KeyRing::generate_entry("no good").is_err());
    }
}
