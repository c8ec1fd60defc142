//! Embedding the control plane in another Rust service, without the HTTP server:
//! `cargo run -p tenant-service --example embed` (CI runs it).
//!
//! On a temporary SQLite file it creates a tenant (with its owner API key and audit entries, as
//! `POST /tenants` does), adds a Telegram channel with its bot token, renders the gateway
//! config, adds a webhook endpoint, ingests a gateway event and reads the delivery it queued.
//! Every step is checked; any surprise exits non-zero.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use serde_json::json;
use tenant_core::{NewChannel, NewTenant, PageRequest};
use tenant_service::ControlPlane;
use tenant_service::webhooks::endpoints::NewWebhook;
use tenant_store::audit::{AuditContext, AuditFilter};
use tenant_webhooks::ingest::EventInput;

#[tokio::main]
async fn main() -> ExitCode {
    let dir = std::env::temp_dir().join(format!("moltbot-embed-{}", uuid::Uuid::new_v4()));
    let result = embed(&dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("embed failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn embed(dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    // A development deployment: the key ring and the API key secret are generated beside the
    // database file. A production embedder passes them in `OpenOptions`.
    let url = format!("sqlite://{}", dir.join("control-plane.db").display());
    let control = ControlPlane::open(&url)?;
    // Who acts, for the audit log.
    let me = AuditContext {
        actor_type: "embedder".into(),
        ..AuditContext::default()
    };

    // A tenant, with its first API key (shown only here) and its audit entries.
    let (tenant, api_key) = control
        .create_tenant(
            me.clone(),
            NewTenant::parse("Acme Corp", None, Some("pro"))?,
            None,
        )
        .await?;
    println!("tenant {} ({})", tenant.id, tenant.account_id.as_str());
    let caller = control.authenticate(api_key.expose()).await?;
    println!("its API key authenticates as {caller:?}");

    // A Telegram channel with its credentials: sealed at rest, ready for the gateway.
    let telegram = NewChannel::parse(
        "telegram",
        Some(true),
        None,
        Some(&json!({"botToken": "123456789:AAexampleTokenFromBotFather"})),
    )?;
    let channel = control
        .add_channel(me.clone(), tenant.id, telegram, None)
        .await?;
    println!("channel {} is {}", channel.kind, channel.state().as_str());

    // The gateway's configuration, with this tenant's agent, account and binding.
    let config = control.render_config().await?;
    let doc: serde_json::Value = serde_json::from_str(&config.json)?;
    let account = &doc["channels"]["telegram"]["accounts"][tenant.account_id.as_str()];
    println!("rendered config: {} bytes", config.json.len());

    // A webhook endpoint, then a gateway event: stored once, and one delivery queued for it.
    let (endpoint, _secret) = control
        .create_webhook(
            me.clone(),
            tenant.id,
            NewWebhook {
                url: "https://hooks.example.com/moltbot".into(),
                description: Some("the CRM".into()),
                event_types: None,
                enabled: None,
            },
            None,
        )
        .await?;
    let accepted = control
        .ingest(EventInput {
            id: "evt-1".into(),
            event_type: "message.received".into(),
            tenant_id: None,
            account_id: Some(tenant.account_id.as_str().to_owned()),
            agent_id: None,
            session_key: None,
            channel: Some("telegram".into()),
            occurred_at: None,
            data: serde_json::Map::from_iter([("text".to_owned(), json!("hello"))]),
        })
        .await?;
    println!("event accepted for tenant {}", accepted.tenant_id);
    let deliveries = control
        .list_deliveries(
            tenant.id,
            endpoint.id,
            None,
            PageRequest::parse(None, None)?,
        )
        .await?;
    for d in &deliveries.items {
        println!("delivery {} to {}: {}", d.id, endpoint.url, d.status);
    }

    // What happened, as the audit log recorded it.
    let audit = control
        .audit_log(
            Some(tenant.id),
            AuditFilter::default(),
            PageRequest::parse(None, None)?,
        )
        .await?;
    let mut actions: Vec<&str> = audit.items.iter().map(|r| r.action.as_str()).collect();
    actions.sort_unstable();
    println!("audit log: {}", actions.join(", "));

    let expected = [
        "channel.created",
        "key.created",
        "tenant.created",
        "webhook.created",
    ];
    if caller.is_none()
        || account.is_null()
        || accepted.tenant_id != tenant.id
        || deliveries.items.len() != 1
        || actions != expected
    {
        return Err("the control plane did not do what was asked".into());
    }
    Ok(())
}
