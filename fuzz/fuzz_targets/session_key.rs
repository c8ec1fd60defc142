//! Session-key parsing: the gateway's `agent:<agentId>:<channel>:<accountId>:…` keys that
//! attribute an event to a tenant and a session.
#![no_main]

#[path = "common/alloc_limit.rs"]
mod alloc_limit;

use libfuzzer_sys::fuzz_target;
use tenant_webhooks::ingest::{SessionKey, agent_of};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = SessionKey::parse(&text);
    let _ = agent_of(&text);
});
