//! Shared helpers of the webhook tests (a tenant's endpoints and the operator's): a server with
//! the dispatcher off, a dispatcher the test drives itself, and the signature check.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chrono::Utc;
use moltbot_saas_tests::{Captured, TestApp, TestDb, spawn_app_with, test_settings};
use serde_json::{Value, json};
use tenant_server::settings::Settings;
use tenant_store::{Database, DatabaseUrl, PoolConfig};
use tenant_webhooks::delivery::{AddressPolicy, CircuitPolicy, ClientConfig};
use tenant_webhooks::{
    Dispatcher, DispatcherConfig, RetrySchedule, SigningSecret, WebhookHeaders, verify,
};

/// A server whose own dispatcher is off (tests call `dispatch_due`), allowing 127.0.0.1.
pub async fn app(db: &TestDb) -> TestApp {
    spawn_app_with(settings(db)).await
}

/// The settings of [`app`], for a test that changes more.
pub fn settings(db: &TestDb) -> Settings {
    let mut settings = test_settings(db);
    settings.webhooks.dispatcher = false;
    settings.webhooks.allowed_networks = vec!["127.0.0.1/32".parse().unwrap()];
    settings
}

/// Whether a captured delivery's signature verifies with `secret`, now.
pub fn verifies(secret: &str, r: &Captured) -> bool {
    let secret = SigningSecret::parse(secret).unwrap();
    let headers = WebhookHeaders {
        id: r.header("webhook-id"),
        timestamp: r.header("webhook-timestamp"),
        signature: r.header("webhook-signature"),
    };
    verify(
        &secret,
        &headers,
        &r.body,
        Utc::now().timestamp(),
        tenant_webhooks::DEFAULT_TOLERANCE,
    )
    .is_ok()
}

/// A dispatcher config for tests: 127.0.0.1 allowed, a given schedule and timeout.
pub fn config(schedule: &str, timeout: Duration, allowed: &str) -> DispatcherConfig {
    DispatcherConfig {
        workers: 1,
        batch_size: 100,
        endpoint_concurrency: 4,
        circuit: CircuitPolicy::default(),
        lease: Duration::from_secs(30),
        schedule: schedule.parse::<RetrySchedule>().unwrap(),
        failure_grace: Duration::from_secs(5 * 86_400),
        poll_interval: Duration::from_millis(50),
        metrics_interval: Duration::from_secs(60),
        client: ClientConfig {
            request_timeout: timeout,
            connect_timeout: Duration::from_secs(2),
            policy: AddressPolicy {
                allowed: AddressPolicy::parse_allowed(allowed).unwrap(),
            },
            require_https: false,
        },
    }
}

/// A dispatcher on the test database.
pub fn dispatcher(db: &TestDb, config: DispatcherConfig) -> Dispatcher {
    let url = DatabaseUrl::parse(db.url()).unwrap();
    let pool = Database::connect(
        &url,
        &PoolConfig {
            max_size: 2,
            ..PoolConfig::default()
        },
    )
    .unwrap();
    Dispatcher::new(pool, moltbot_saas_tests::test_keys(), config).unwrap()
}

/// The default test dispatcher: the real default schedule, a 2 s timeout, 127.0.0.1 allowed.
pub fn default_dispatcher(db: &TestDb) -> Dispatcher {
    dispatcher(
        db,
        config(
            "0s,5s,5m,30m,2h,5h,10h,10h",
            Duration::from_secs(2),
            "127.0.0.1/32",
        ),
    )
}

/// Creates a tenant and an endpoint on `url`; returns (tenant body, endpoint body with secret).
pub async fn tenant_with_endpoint(app: &TestApp, url: &str) -> (Value, Value) {
    let tenant = app.create_tenant("Hooks Inc").await;
    let id = tenant["id"].as_str().unwrap();
    let r = app
        .post(&format!("/tenants/{id}/webhooks"), &json!({ "url": url }))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    (tenant, r.body)
}

/// Posts a `message.received` event for the tenant as the gateway; returns the response body.
pub async fn send_event(app: &TestApp, tenant: &Value, event_id: &str) -> Value {
    let r = app
        .request_as(
            Some(&app.gateway_token),
            reqwest::Method::POST,
            "/events",
            Some(&json!({
                "id": event_id,
                "type": "message.received",
                "accountId": tenant["accountId"],
                "data": {"text": "hello"},
            })),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    r.body
}
