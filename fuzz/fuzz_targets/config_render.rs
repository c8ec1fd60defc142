//! The config renderer's input: an operator's base config (JSON5) and a tenant with a channel
//! built from the input (name, display name, credentials as a request would give them), in every
//! dialect and secrets mode. Rendering succeeds or refuses; it never panics.
#![no_main]

#[path = "common/alloc_limit.rs"]
mod alloc_limit;

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use tenant_configgen::{BaseConfig, Dialect, RenderOptions, SecretsMode, TenantSource};
use tenant_core::{
    AccountId, AgentId, Channel, ChannelId, ChannelKind, Credentials, DisplayName, Plan, Slug,
    Tenant, TenantId, TenantName, TenantStatus,
};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.splitn(4, '\u{1e}');
    let (base, name, display, creds) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let base = BaseConfig::parse(base).ok();
    let Ok(name) = TenantName::parse(name) else {
        return;
    };
    let id = TenantId::from(uuid::Uuid::from_u128(0x0c6f_1a2b_0000_4000_8000_0000_0000_0001));
    let Some(at) = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).single() else {
        return;
    };
    let tenant = Tenant {
        account_id: AccountId::for_tenant(&id),
        agent_id: AgentId::for_tenant(&id),
        slug: Slug::derive(name.as_str(), &id),
        name,
        id,
        plan: Plan::Free,
        status: TenantStatus::Active,
        created_at: at,
        updated_at: at,
        quota_exceeded_period: None,
    };
    let kind = ChannelKind::ALL[usize::from(which) % ChannelKind::ALL.len()];
    let credentials = serde_json::from_str(creds)
        .ok()
        .and_then(|v| Credentials::parse(kind, &v).ok())
        .unwrap_or_else(|| Credentials::empty(kind));
    let channel = Channel {
        id: ChannelId::from(uuid::Uuid::from_u128(7)),
        tenant_id: id,
        kind,
        enabled: which & 0x80 == 0,
        display_name: DisplayName::parse(display).ok(),
        credentials,
        created_at: at,
        updated_at: at,
    };
    let channels = [channel];
    let source = TenantSource {
        tenant: &tenant,
        channels: &channels,
    };
    for dialect in Dialect::ALL {
        for secrets in SecretsMode::ALL {
            let opts = RenderOptions {
                dialect: *dialect,
                secrets: *secrets,
                base: base.clone(),
                ..RenderOptions::default()
            };
            let _ = tenant_configgen::render_tenant(&source, &opts);
        }
    }
});
