//! Verification of a received delivery: timestamp tolerance, then a constant-time signature match.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use subtle::{Choice, ConstantTimeEq as _};

use super::{SIGNATURE_VERSION, SigningSecret, mac_tag};

/// How far a delivery's timestamp may lie from the verifier's clock, either way (5 minutes).
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// The raw values of the three Standard Webhooks headers of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookHeaders<'a> {
    /// The `webhook-id` value.
    pub id: &'a str,
    /// The `webhook-timestamp` value (integer Unix seconds).
    pub timestamp: &'a str,
    /// The `webhook-signature` value (space-separated `version,base64` entries).
    pub signature: &'a str,
}

/// Why a delivery failed verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The message id is empty.
    #[error("webhook id is empty")]
    MissingId,
    /// The timestamp is not a non-negative integer number of seconds.
    #[error("webhook timestamp is not an integer number of Unix seconds")]
    InvalidTimestamp,
    /// The timestamp lies further in the past than the tolerance allows.
    #[error("webhook timestamp is too old")]
    TimestampTooOld,
    /// The timestamp lies further in the future than the tolerance allows.
    #[error("webhook timestamp is too far in the future")]
    TimestampTooNew,
    /// The signature header holds no `v1` signature.
    #[error("webhook signature header holds no v1 signature")]
    NoSupportedSignature,
    /// No `v1` signature matches the expected one.
    #[error("no webhook signature matches")]
    SignatureMismatch,
}

/// Checks one delivery against `secret`.
///
/// `now_secs` is the verifier's current Unix time; the delivery's timestamp must lie within
/// `tolerance` of it (use [`DEFAULT_TOLERANCE`]). The signed content uses the timestamp header
/// exactly as received. Signature entries of other versions are ignored, as the spec requires;
/// the delivery is accepted when any `v1` entry matches, compared in constant time.
pub fn verify(
    secret: &SigningSecret,
    headers: &WebhookHeaders<'_>,
    body: &[u8],
    now_secs: i64,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    if headers.id.is_empty() {
        return Err(VerifyError::MissingId);
    }
    let timestamp = parse_timestamp(headers.timestamp)?;
    let skew = i128::from(now_secs) - i128::from(timestamp);
    let tolerance = i128::from(tolerance.as_secs());
    if skew > tolerance {
        return Err(VerifyError::TimestampTooOld);
    }
    if -skew > tolerance {
        return Err(VerifyError::TimestampTooNew);
    }

    let expected = mac_tag(secret, headers.id, headers.timestamp, body);
    let mut saw_v1 = false;
    let mut matched = Choice::from(0);
    for entry in headers.signature.split_ascii_whitespace() {
        let Some((version, encoded)) = entry.split_once(',') else {
            continue;
        };
        if version != SIGNATURE_VERSION {
            continue;
        }
        saw_v1 = true;
        if let Ok(candidate) = STANDARD.decode(encoded) {
            matched |= expected.as_slice().ct_eq(&candidate);
        }
    }
    if bool::from(matched) {
        Ok(())
    } else if saw_v1 {
        Err(VerifyError::SignatureMismatch)
    } else {
        Err(VerifyError::NoSupportedSignature)
    }
}

/// Parses a timestamp header: ASCII digits only, fitting an `i64`.
fn parse_timestamp(value: &str) -> Result<i64, VerifyError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::InvalidTimestamp);
    }
    value.parse().map_err(|_| VerifyError::InvalidTimestamp)
}

#[cfg(test)]
mod tests {
    use super::super::sign;
    use super::super::tests::{
        SPEC_BODY, SPEC_MSG_ID, SPEC_SECRET, SPEC_SIGNATURE, SPEC_TIMESTAMP,
    };
    use super::*;

    fn secret() -> SigningSecret {
        SigningSecret::parse(SPEC_SECRET).expect("spec secret is valid")
    }

    fn check(signature: &str, timestamp: &str, now: i64) -> Result<(), VerifyError> {
        let headers = WebhookHeaders {
            id: SPEC_MSG_ID,
            timestamp,
            signature,
        };
        verify(&secret(), &headers, SPEC_BODY, now, DEFAULT_TOLERANCE)
    }

    const TS: &str = "1614265330";

    #[test]
    fn accepts_the_spec_test_vector() {
        assert_eq!(check(SPEC_SIGNATURE, TS, SPEC_TIMESTAMP), Ok(()));
    }

    #[test]
    fn accepts_any_matching_entry_among_several() {
        let other = sign(
            &SigningSecret::generate(),
            SPEC_MSG_ID,
            SPEC_TIMESTAMP,
            SPEC_BODY,
        );
        let header = format!("v1a,ZmFrZQ== {other}  {SPEC_SIGNATURE}");
        assert_eq!(check(&header, TS, SPEC_TIMESTAMP), Ok(()));
    }

    #[test]
    fn rejects_a_tampered_body_or_id() {
        let headers = WebhookHeaders {
            id: SPEC_MSG_ID,
            timestamp: TS,
            signature: SPEC_SIGNATURE,
        };
        let tampered = br#"{"test": 2432232315}"#;
        assert_eq!(
            verify(
                &secret(),
                &headers,
                tampered,
                SPEC_TIMESTAMP,
                DEFAULT_TOLERANCE
            ),
            Err(VerifyError::SignatureMismatch)
        );
        let other_id = WebhookHeaders {
            id: "msg_other",
            ..headers
        };
        assert_eq!(
            verify(
                &secret(),
                &other_id,
                SPEC_BODY,
                SPEC_TIMESTAMP,
                DEFAULT_TOLERANCE
            ),
            Err(VerifyError::SignatureMismatch)
        );
    }

    #[test]
    fn rejects_a_signature_made_with_another_secret() {
        let forged = sign(
            &SigningSecret::generate(),
            SPEC_MSG_ID,
            SPEC_TIMESTAMP,
            SPEC_BODY,
        );
        assert_eq!(
            check(&forged, TS, SPEC_TIMESTAMP),
            Err(VerifyError::SignatureMismatch)
        );
    }

    #[test]
    fn signs_over_the_timestamp_exactly_as_received() {
        // Same integer, different text: the sender signed "1614265330", not "01614265330".
        assert_eq!(
            check(SPEC_SIGNATURE, "01614265330", SPEC_TIMESTAMP),
            Err(VerifyError::SignatureMismatch)
        );
    }

    #[test]
    fn enforces_the_tolerance_window_inclusively() {
        let tol = DEFAULT_TOLERANCE.as_secs() as i64;
        assert_eq!(check(SPEC_SIGNATURE, TS, SPEC_TIMESTAMP + tol), Ok(()));
        assert_eq!(check(SPEC_SIGNATURE, TS, SPEC_TIMESTAMP - tol), Ok(()));
        assert_eq!(
            check(SPEC_SIGNATURE, TS, SPEC_TIMESTAMP + tol + 1),
            Err(VerifyError::TimestampTooOld)
        );
        assert_eq!(
            check(SPEC_SIGNATURE, TS, SPEC_TIMESTAMP - tol - 1),
            Err(VerifyError::TimestampTooNew)
        );
    }

    #[test]
    fn extreme_clocks_do_not_overflow() {
        assert_eq!(
            check(SPEC_SIGNATURE, "9223372036854775807", i64::MIN),
            Err(VerifyError::TimestampTooNew)
        );
        assert_eq!(
            check(SPEC_SIGNATURE, "0", i64::MAX),
            Err(VerifyError::TimestampTooOld)
        );
    }

    #[test]
    fn rejects_malformed_headers() {
        for ts in [
            "",
            "-1614265330",
            "+1614265330",
            "1614265330.0",
            " 1614265330",
            "9223372036854775808",
        ] {
            assert_eq!(
                check(SPEC_SIGNATURE, ts, SPEC_TIMESTAMP),
                Err(VerifyError::InvalidTimestamp),
                "{ts:?}"
            );
        }
        for sig in [
            "",
            "   ",
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "v2,abc",
        ] {
            assert_eq!(
                check(sig, TS, SPEC_TIMESTAMP),
                Err(VerifyError::NoSupportedSignature),
                "{sig:?}"
            );
        }
        assert_eq!(
            check("v1,not-base64!", TS, SPEC_TIMESTAMP),
            Err(VerifyError::SignatureMismatch)
        );
        assert_eq!(
            check("v1,", TS, SPEC_TIMESTAMP),
            Err(VerifyError::SignatureMismatch)
        );
        let headers = WebhookHeaders {
            id: "",
            timestamp: TS,
            signature: SPEC_SIGNATURE,
        };
        assert_eq!(
            verify(
                &secret(),
                &headers,
                SPEC_BODY,
                SPEC_TIMESTAMP,
                DEFAULT_TOLERANCE
            ),
            Err(VerifyError::MissingId)
        );
    }
}
