//! The API's request body parser (`parse_json`: JSON objects only, field paths in errors,
//! whole numbers, nested objects) on every request type, and the validation each body goes
//! through next. The first byte picks the type; the rest is the body.
#![no_main]

#[path = "common/alloc_limit.rs"]
mod alloc_limit;

use libfuzzer_sys::fuzz_target;
use tenant_core::{ChannelKind, Credentials, CredentialsPatch, Email, NewTenant, Role};
use tenant_server::http::extract::parse_json;
use tenant_server::routes::{api_keys, auth, channels, events, limits, tenants, users, webhooks};
use tenant_service::webhooks::endpoints::{validate_description, validate_event_types};
use tenant_webhooks::ingest::{EventInput, validate};

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 12 {
        0 => {
            if let Ok(b) = parse_json::<tenants::CreateTenantRequest>(body) {
                let _ = NewTenant::parse(&b.name, b.slug.as_deref(), b.plan.as_deref());
            }
        }
        1 => {
            let _ = parse_json::<tenants::UpdateTenantRequest>(body);
        }
        2 => {
            if let Ok(b) = parse_json::<channels::CreateChannelRequest>(body)
                && let Ok(kind) = b.channel.parse::<ChannelKind>()
                && let Some(c) = &b.credentials
            {
                let _ = Credentials::parse(kind, c);
            }
        }
        3 => {
            if let Ok(b) = parse_json::<channels::UpdateChannelRequest>(body)
                && let Some(c) = &b.credentials
            {
                let _ = CredentialsPatch::parse(ChannelKind::Slack, c);
            }
        }
        4 => {
            if let Ok(b) = parse_json::<users::CreateUserRequest>(body) {
                let _ = Email::parse(&b.email);
                let _ = b.role.parse::<Role>();
            }
        }
        5 => {
            if let Ok(b) = parse_json::<auth::LoginRequest>(body) {
                let _ = Email::parse(&b.email);
            }
        }
        6 => {
            let _ = parse_json::<api_keys::CreateApiKeyRequest>(body);
        }
        7 => {
            let _ = parse_json::<api_keys::RotateApiKeyRequest>(body);
        }
        8 => {
            if let Ok(b) = parse_json::<webhooks::CreateWebhookRequest>(body) {
                let _ = validate_description(b.description.as_deref());
                let _ = validate_event_types(b.event_types.as_deref().unwrap_or_default());
            }
        }
        9 => {
            if let Ok(b) = parse_json::<events::EventRequest>(body) {
                let _ = validate(EventInput {
                    id: b.id,
                    event_type: b.event_type,
                    account_id: b.account_id,
                    agent_id: b.agent_id,
                    session_key: b.session_key,
                    channel: b.channel,
                    occurred_at: b.timestamp,
                    data: b.data.unwrap_or_default(),
                    ..EventInput::default()
                });
            }
        }
        10 => {
            let _ = parse_json::<events::MessageRequest>(body);
        }
        _ => {
            let _ = parse_json::<limits::ChangeLimitsRequest>(body);
        }
    }
});
