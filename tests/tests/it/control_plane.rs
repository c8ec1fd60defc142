//! The facade for embedders, `tenant_service::ControlPlane`, on both backends and without the
//! HTTP server: the same use cases as the API (owner key and audit rows included), the same
//! rules and errors, and rows the server reads back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use moltbot_saas_tests::{TestDb, spawn_app_with, test_keys, test_settings};
use reqwest::StatusCode;
use serde_json::json;
use tenant_core::{NewChannel, NewTenant, PageRequest, Secret};
use tenant_service::control_plane::open::{OpenError, OpenOptions};
use tenant_service::deployment::Environment;
use tenant_service::principal::Principal;
use tenant_service::tenants::TenantPatch;
use tenant_service::webhooks::endpoints::NewWebhook;
use tenant_service::{ControlPlane, ServiceError};
use tenant_store::audit::{AuditContext, AuditFilter};
use tenant_webhooks::ingest::EventInput;

/// Options with every secret given, so nothing is generated (and the server started on the same
/// database with the test settings opens what this writes).
fn options(dir: &std::path::Path, api_key_secret: &str) -> OpenOptions {
    let mut options = OpenOptions {
        data_dir: Some(dir.to_owned()),
        key_ring: Some(test_keys()),
        api_key_secret: Some(Secret::new(api_key_secret)),
        ..OpenOptions::default()
    };
    options.identity.jwt_secret = Some(Secret::new("control-plane-test-jwt-secret-0123456789"));
    options
}

fn me() -> AuditContext {
    AuditContext {
        actor_type: "embedder".into(),
        ..AuditContext::default()
    }
}

fn event(id: &str, account_id: &str) -> EventInput {
    EventInput {
        id: id.into(),
        event_type: "message.received".into(),
        tenant_id: None,
        account_id: Some(account_id.to_owned()),
        agent_id: None,
        session_key: None,
        channel: Some("telegram".into()),
        occurred_at: None,
        data: serde_json::Map::new(),
    }
}

#[tokio::test]
async fn an_embedder_runs_the_use_cases_the_api_runs() {
    let db = TestDb::new();
    let dir = std::env::temp_dir().join(format!("control-plane-{}", uuid::Uuid::new_v4()));
    let control = ControlPlane::open_with(
        db.url(),
        options(&dir, "control-plane-test-api-key-secret-01"),
    )
    .unwrap();

    let (tenant, key) = control
        .create_tenant(me(), NewTenant::parse("Acme", None, None).unwrap(), None)
        .await
        .unwrap();
    // The owner key works, and only for its tenant.
    match control.authenticate(key.expose()).await.unwrap() {
        Some(Principal::Tenant {
            tenant_id, role, ..
        }) => {
            assert_eq!(tenant_id, tenant.id);
            assert_eq!(role, tenant_core::Role::Owner);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        control
            .authenticate("msk_live_unknown")
            .await
            .unwrap()
            .is_none()
    );

    let telegram = NewChannel::parse(
        "telegram",
        Some(true),
        None,
        Some(&json!({"botToken": "123456:SECRETsecretSECRET"})),
    )
    .unwrap();
    control
        .add_channel(me(), tenant.id, telegram, None)
        .await
        .unwrap();
    let config = control.render_config().await.unwrap();
    assert!(config.json.contains(tenant.account_id.as_str()));
    assert!(config.json.contains("123456:SECRETsecretSECRET"));

    let (endpoint, _) = control
        .create_webhook(
            me(),
            tenant.id,
            NewWebhook {
                url: "https://hooks.example.com/x".into(),
                description: None,
                event_types: None,
                enabled: None,
            },
            None,
        )
        .await
        .unwrap();
    let accepted = control
        .ingest(event("evt-1", tenant.account_id.as_str()))
        .await
        .unwrap();
    assert_eq!(accepted.tenant_id, tenant.id);
    // The same id again is a duplicate: nothing new queued.
    control
        .ingest(event("evt-1", tenant.account_id.as_str()))
        .await
        .unwrap();
    let page = PageRequest::parse(None, None).unwrap();
    let deliveries = control
        .list_deliveries(tenant.id, endpoint.id, Some("pending"), page)
        .await
        .unwrap();
    assert_eq!(deliveries.items.len(), 1);

    let audit = control
        .audit_log(Some(tenant.id), AuditFilter::default(), page)
        .await
        .unwrap();
    let mut actions: Vec<&str> = audit.items.iter().map(|r| r.action.as_str()).collect();
    actions.sort_unstable();
    assert_eq!(
        actions,
        [
            "channel.created",
            "key.created",
            "tenant.created",
            "webhook.created"
        ]
    );
    assert!(audit.items.iter().all(|r| r.actor_type == "embedder"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_rules_and_errors_are_the_apis() {
    let db = TestDb::new();
    let dir = std::env::temp_dir().join(format!("control-plane-{}", uuid::Uuid::new_v4()));
    let control = ControlPlane::open_with(
        db.url(),
        options(&dir, "control-plane-test-api-key-secret-02"),
    )
    .unwrap();
    let (tenant, _) = control
        .create_tenant(me(), NewTenant::parse("Rules", None, None).unwrap(), None)
        .await
        .unwrap();
    // The status is the operator's to change: a tenant principal is refused before any field
    // is looked at.
    let tenant_principal = Principal::Tenant {
        tenant_id: tenant.id,
        role: tenant_core::Role::Owner,
        actor: tenant_service::principal::ActorRef::ApiKey(uuid::Uuid::new_v4()),
    };
    let suspend = TenantPatch {
        status: Some("bogus".into()),
        ..TenantPatch::default()
    };
    let err = control
        .update_tenant(me(), &tenant_principal, tenant.id, suspend.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Forbidden), "{err}");
    let operator = Principal::Operator {
        actor: tenant_service::principal::ActorRef::ServiceToken(None),
    };
    let err = control
        .update_tenant(me(), &operator, tenant.id, suspend)
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Validation(_)), "{err}");
    // Key rules.
    let err = control
        .issue_api_key(me(), tenant.id, " ", None, None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Validation(_)), "{err}");
    // Reads of a missing tenant's resources are not found, not empty.
    let err = control
        .list_channels(tenant_core::TenantId::random())
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::NotFound("tenant")), "{err}");
    // A bad delivery status filter names the field.
    let err = control
        .list_deliveries(
            tenant.id,
            uuid::Uuid::new_v4(),
            Some("lost"),
            PageRequest::parse(None, None).unwrap(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ServiceError::Validation(e) if e.0[0].field == "status"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn production_refuses_to_generate_secrets() {
    let db = TestDb::new();
    let dir = std::env::temp_dir().join(format!("control-plane-{}", uuid::Uuid::new_v4()));
    let options = OpenOptions {
        environment: Environment::Production,
        data_dir: Some(dir.clone()),
        ..OpenOptions::default()
    };
    let err = ControlPlane::open_with(db.url(), options).unwrap_err();
    assert!(matches!(err, OpenError::Keys(_)), "{err}");
    assert!(!dir.exists(), "nothing generated in production");
}

#[actix_web::test]
async fn the_server_reads_what_an_embedder_wrote() {
    let db = TestDb::new();
    let settings = test_settings(&db);
    let secret = settings
        .api_key_secret
        .as_ref()
        .unwrap()
        .expose()
        .to_owned();
    let dir = std::env::temp_dir().join(format!("control-plane-{}", uuid::Uuid::new_v4()));
    let control = ControlPlane::open_with(db.url(), options(&dir, &secret)).unwrap();
    let (tenant, key) = control
        .create_tenant(me(), NewTenant::parse("Shared", None, None).unwrap(), None)
        .await
        .unwrap();
    let telegram = NewChannel::parse(
        "telegram",
        None,
        None,
        Some(&json!({"botToken": "99:AAsharedTOKEN"})),
    )
    .unwrap();
    control
        .add_channel(me(), tenant.id, telegram, None)
        .await
        .unwrap();
    drop(control);

    let app = spawn_app_with(settings).await;
    // The owner key issued by the embedder is accepted by the server, for its tenant.
    let r = app
        .client
        .get(format!(
            "{}/tenants/{}/channels/telegram",
            app.address, tenant.id
        ))
        .bearer_auth(key.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["state"], "ready");
    assert_eq!(body["credentials"]["botToken"]["set"], true);
    app.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
