//! The `Idempotency-Key` value and the fingerprint of a request body.

use sha2::{Digest, Sha256};

use crate::error::ServiceError;

/// The longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 255;

/// A valid `Idempotency-Key`: 1–255 printable ASCII characters (space to `~`). The draft makes
/// the header a structured-field string (`"…"`); a quoted value is accepted and unquoted, a bare
/// one as it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Checks a header value; [`ServiceError::InvalidIdempotencyKey`] says what is wrong (never
    /// quoting the value).
    pub fn parse(raw: &[u8]) -> Result<Self, ServiceError> {
        let invalid = |why: &str| ServiceError::InvalidIdempotencyKey(why.to_owned());
        if raw.iter().any(|b| !(0x20..=0x7e).contains(b)) {
            return Err(invalid(
                "Idempotency-Key must be printable ASCII (space to ~)",
            ));
        }
        // Printable ASCII is UTF-8.
        let text = std::str::from_utf8(raw).map_err(|_| invalid("not ASCII"))?;
        let key = match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            Some(inner) => unquote(inner).ok_or_else(|| {
                invalid("Idempotency-Key is a quoted string with a stray quote or backslash")
            })?,
            None => text.to_owned(),
        };
        if key.is_empty() {
            return Err(invalid("Idempotency-Key is empty"));
        }
        if key.len() > MAX_KEY_LEN {
            return Err(invalid("Idempotency-Key is longer than 255 characters"));
        }
        Ok(Self(key))
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The content of a structured-field string: `\"` and `\\` escapes, nothing else escaped.
fn unquote(inner: &str) -> Option<String> {
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('"' | '\\')) => out.push(e),
                _ => return None,
            },
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// The fingerprint of a request body: its SHA-256, hex. Two requests with one key are the same
/// request if their bodies are byte for byte the same.
pub fn fingerprint(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_printable_ascii_of_1_to_255_characters() {
        assert_eq!(
            IdempotencyKey::parse(b"abc-123").unwrap().as_str(),
            "abc-123"
        );
        assert_eq!(
            IdempotencyKey::parse(b"\"8e03978e-40d5\"")
                .unwrap()
                .as_str(),
            "8e03978e-40d5"
        );
        assert_eq!(
            IdempotencyKey::parse(br#""a\"b\\c""#).unwrap().as_str(),
            r#"a"b\c"#
        );
        assert_eq!(
            IdempotencyKey::parse(b"with space").unwrap().as_str(),
            "with space"
        );
        assert!(IdempotencyKey::parse(&[b'k'; 255]).is_ok());
        for bad in [
            &b""[..],
            b"\"\"",
            &[b'k'; 256],
            b"tab\there",
            b"caf\xc3\xa9",
            b"\"unterminated\\\"",
            b"\"in\"side\"",
        ] {
            assert!(
                matches!(
                    IdempotencyKey::parse(bad),
                    Err(ServiceError::InvalidIdempotencyKey(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn fingerprints_tell_bodies_apart() {
        assert_eq!(fingerprint(b"{}"), fingerprint(b"{}"));
        assert_ne!(fingerprint(b"{}"), fingerprint(b"{ }"));
        assert_eq!(fingerprint(b"").len(), 64);
    }
}
