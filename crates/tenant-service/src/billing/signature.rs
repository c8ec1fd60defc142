//! The `Stripe-Signature` header of webhook requests: `t=<unix seconds>,v1=<hex>[,v1=<hex>…]`,
//! each `v1` an HMAC-SHA256 of `"{t}.{raw body}"` keyed with the endpoint's signing secret
//! (`whsec_…`, used whole). Several `v1` entries come while a secret is being rolled; one
//! matching is enough. Checked on the raw bytes (a re-serialised body would not match),
//! compared in constant time, and refused when `t` is more than the tolerance away from now.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a signature's timestamp may be from now (Stripe's libraries use 300 s).
pub const TOLERANCE_SECS: i64 = 300;

/// Why a signature was refused (the message names no secret and no signature value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `Stripe-Signature` header.
    #[error("the Stripe-Signature header is missing")]
    Missing,
    /// No `t=` or no `v1=` in it, or a `t` that is not a number.
    #[error("the Stripe-Signature header has no timestamp or no v1 signature")]
    Malformed,
    /// The timestamp is too far from now (a replay of an old request, or a wrong clock).
    #[error("the Stripe-Signature timestamp is outside the {0} s tolerance")]
    Expired(i64),
    /// No `v1` signature matches the body with our secret.
    #[error("no v1 signature matches the body")]
    Mismatch,
}

fn mac(secret: &[u8], timestamp: i64, payload: &[u8]) -> Hmac<Sha256> {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac
}

/// Verifies `header` for `payload` with `secret` at time `now` (unix seconds); returns the
/// signature's timestamp.
pub fn verify(
    header: Option<&str>,
    payload: &[u8],
    secret: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<i64, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else {
            continue;
        };
        match key {
            "t" if timestamp.is_none() => {
                timestamp = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed)?,
                );
            }
            // A `v1` that is not hex cannot match; the others still may.
            "v1" => signatures.extend(hex::decode(value).ok()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - timestamp).abs() > tolerance_secs {
        return Err(SignatureError::Expired(tolerance_secs));
    }
    let expected = mac(secret, timestamp, payload);
    // `verify_slice` compares in constant time.
    if signatures
        .iter()
        .any(|s| expected.clone().verify_slice(s).is_ok())
    {
        Ok(timestamp)
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The `Stripe-Signature` header Stripe would send for `payload` at `timestamp` (for tests and
/// the fake Stripe: the production path only verifies).
pub fn header(secret: &[u8], timestamp: i64, payload: &[u8]) -> String {
    let sig = mac(secret, timestamp, payload).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(sig))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test_secret";
    const NOW: i64 = 1_780_000_000;

    #[test]
    fn a_signature_of_the_exact_body_within_tolerance_passes() {
        let body = br#"{"id":"evt_1"}"#;
        let h = header(SECRET, NOW - 300, body);
        assert_eq!(verify(Some(&h), body, SECRET, NOW, 300), Ok(NOW - 300));
    }

    #[test]
    fn anything_else_is_refused() {
        let body = br#"{"id":"evt_1"}"#;
        let good = header(SECRET, NOW, body);
        assert_eq!(
            verify(None, body, SECRET, NOW, 300),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(Some("v1=abcd"), body, SECRET, NOW, 300),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(Some(&format!("t={NOW}")), body, SECRET, NOW, 300),
            Err(SignatureError::Malformed)
        );
        let old = header(SECRET, NOW - 301, body);
        assert_eq!(
            verify(Some(&old), body, SECRET, NOW, 300),
            Err(SignatureError::Expired(300))
        );
        assert_eq!(
            verify(Some(&good), br#"{"id":"evt_2"}"#, SECRET, NOW, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Some(&good), body, b"whsec_other", NOW, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn one_matching_v1_among_several_is_enough() {
        let body = b"{}";
        let good = header(SECRET, NOW, body);
        let sig = good.split_once(",v1=").unwrap().1;
        let several = format!("t={NOW},v1={},v1=zz,v1={sig},v0=abc", "00".repeat(32));
        assert_eq!(verify(Some(&several), body, SECRET, NOW, 300), Ok(NOW));
    }
}
