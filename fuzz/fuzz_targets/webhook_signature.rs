//! The Standard Webhooks side: parsing a `whsec_` secret, and verifying a delivery whose
//! `webhook-id`, `webhook-timestamp` and `webhook-signature` headers and body come from the
//! input (split at the first three newlines). A signature made with the secret must verify.
#![no_main]

#[path = "common/alloc_limit.rs"]
mod alloc_limit;

use libfuzzer_sys::fuzz_target;
use tenant_webhooks::signing::{self, DEFAULT_TOLERANCE, SigningSecret, WebhookHeaders};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = SigningSecret::parse(&text);
    let mut parts = text.splitn(4, '\n');
    let (id, timestamp, signature) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let body = parts.next().unwrap_or_default().as_bytes();
    let Ok(secret) = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") else {
        return;
    };
    let now = 1_700_000_000;
    let headers = WebhookHeaders {
        id,
        timestamp,
        signature,
    };
    let _ = signing::verify(&secret, &headers, body, now, DEFAULT_TOLERANCE);
    if !id.is_empty() {
        let ts = now.to_string();
        let good = signing::sign(&secret, id, now, body);
        let headers = WebhookHeaders {
            id,
            timestamp: &ts,
            signature: &good,
        };
        assert!(signing::verify(&secret, &headers, body, now, DEFAULT_TOLERANCE).is_ok());
    }
});
