//! Credential validation: a channel's credentials (and a patch of them) from a request's JSON,
//! and from their stored form, for each channel kind. The first byte picks the kind.
#![no_main]

#[path = "common/alloc_limit.rs"]
mod alloc_limit;

use libfuzzer_sys::fuzz_target;
use tenant_core::{ChannelKind, Credentials, CredentialsPatch};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let kind = ChannelKind::ALL[usize::from(which) % ChannelKind::ALL.len()];
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(rest) {
        if let Ok(mut creds) = Credentials::parse(kind, &value) {
            let _ = creds.missing_fields();
            if let Ok(patch) = CredentialsPatch::parse(kind, &value) {
                creds.apply(patch);
            }
        }
        let _ = CredentialsPatch::parse(kind, &value);
    }
    if let Ok(text) = std::str::from_utf8(rest) {
        let _ = Credentials::from_json_str(kind, text);
    }
});
