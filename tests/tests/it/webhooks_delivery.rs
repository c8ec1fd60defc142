//! Durable delivery to real receivers on 127.0.0.1, driven round by round with `dispatch_due`:
//! success and signatures, retries after 500s and timeouts, `Retry-After`, `410 Gone`, dead
//! letters and replay, secret rotation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chrono::Utc;
use moltbot_saas_tests::{Reply, TestDb, WebhookReceiver};
use serde_json::Value;

use crate::webhooks_support::{
    app, config, default_dispatcher, dispatcher, send_event, tenant_with_endpoint, verifies,
};

/// Appends captured requests with the secrets that must verify them to the file named by
/// `WEBHOOK_CAPTURE_FILE`, for the independent check (`scripts/webhooks/verify-signatures.sh`).
fn capture(secrets: &[&str], r: &moltbot_saas_tests::Captured) {
    let Some(path) = std::env::var_os("WEBHOOK_CAPTURE_FILE") else {
        return;
    };
    use std::io::Write;
    let line = serde_json::json!({
        "secrets": secrets,
        "headers": {
            "webhook-id": r.header("webhook-id"),
            "webhook-timestamp": r.header("webhook-timestamp"),
            "webhook-signature": r.header("webhook-signature"),
        },
        "body": String::from_utf8_lossy(&r.body),
    });
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    writeln!(f, "{line}").unwrap();
}

async fn deliveries(
    app: &moltbot_saas_tests::TestApp,
    tenant: &Value,
    hook: &Value,
    query: &str,
) -> Vec<Value> {
    let r = app
        .get(&format!(
            "/tenants/{}/webhooks/{}/deliveries{query}",
            tenant["id"].as_str().unwrap(),
            hook["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["deliveries"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_delivery_is_signed_and_recorded() {
    let db = TestDb::new();
    let app = app(&db).await;
    let rx = WebhookReceiver::start().await;
    let (tenant, hook) = tenant_with_endpoint(&app, &rx.url).await;
    let secret = hook["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    let accepted = send_event(&app, &tenant, "gw-evt-1").await;
    assert_eq!(accepted["deliveries"], 1);

    let d = default_dispatcher(&db);
    let o = d.dispatch_due(Utc::now()).await.unwrap();
    assert_eq!((o.claimed, o.succeeded), (1, 1));
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert!(r.header("webhook-id").starts_with("msg_"));
    assert!(r.header("webhook-signature").starts_with("v1,"));
    assert!(verifies(secret, r), "our verifier accepts the signature");
    capture(&[secret], r);
    let body = r.json();
    assert_eq!(body["type"], "message.received");
    assert_eq!(body["data"]["text"], "hello");
    assert_eq!(body["data"]["tenantId"], tenant["id"]);

    // Nothing is due any more; the delivery is recorded as a success with one attempt.
    assert_eq!(d.dispatch_due(Utc::now()).await.unwrap().claimed, 0);
    let list = deliveries(&app, &tenant, &hook, "").await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["status"], "succeeded");
    assert_eq!(list[0]["attempts"], 1);
    // The endpoint never shows its secret again.
    let got = app
        .get(&format!(
            "/tenants/{}/webhooks/{}",
            tenant["id"].as_str().unwrap(),
            hook["id"].as_str().unwrap()
        ))
        .await;
    assert!(!got.text.contains(secret));
    assert!(got.body.get("secret").is_none());
}

#[tokio::test]
async fn a_500_is_retried_on_schedule_with_every_attempt_recorded() {
    let db = TestDb::new();
    let app = app(&db).await;
    let rx = WebhookReceiver::start().await;
    rx.script([Reply::status(500), Reply::status(502)]);
    let (tenant, hook) = tenant_with_endpoint(&app, &rx.url).await;
    send_event(&app, &tenant, "gw-evt-500").await;
    let d = default_dispatcher(&db);
    let t0 = Utc::now();
    let o = d.dispatch_due(t0).await.unwrap();
    assert_eq!((o.claimed, o.retried), (1, 1));
    // The second step is 5 s ± 20 %: not due at +3 s, due at +7 s.
    assert_eq!(
        d.dispatch_due(t0 + chrono::Duration::seconds(3))
            .await
            .unwrap()
            .claimed,
        0
    );
    let o = d
        .dispatch_due(t0 + chrono::Duration::seconds(7))
        .await
        .unwrap();
    assert_eq!((o.claimed, o.retried), (1, 1));
    // The third step is 5 min ± 20 %.
    let o = d
        .dispatch_due(t0 + chrono::Duration::seconds(7 + 361))
        .await
        .unwrap();
    assert_eq!((o.claimed, o.succeeded), (1, 1));
    assert_eq!(rx.count(), 3);
    let ids: Vec<String> = rx
        .requests()
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "the message id is stable across retries"
    );

    let list = deliveries(&app, &tenant, &hook, "").await;
    let did = list[0]["id"].as_str().unwrap();
    let detail = app
        .get(&format!(
            "/tenants/{}/webhooks/{}/deliveries/{did}",
            tenant["id"].as_str().unwrap(),
            hook["id"].as_str().unwrap()
        ))
        .await;
    let log = detail.body["attemptsLog"].as_array().unwrap();
    let statuses: Vec<i64> = log
        .iter()
        .map(|a| a["statusCode"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, [500, 502, 200]);
    assert_eq!(log[0]["outcome"], "http_error");
    assert_eq!(log[0]["responseExcerpt"], "status 500");
    assert_eq!(detail.body["status"], "succeeded");
}

#[tokio::test]
async fn a_timeout_is_retried() {
    let db = TestDb::new();
    let app = app(&db).await;
    let rx = WebhookReceiver::start().await;
    rx.script([Reply::status(200).delayed(Duration::from_secs(3))]);
    let (tenant, hook) = tenant_with_endpoint(&app, &rx.url).await;
    send_event(&app, &tenant, "gw-evt-slow").await;
    let d = dispatcher(
        &db,
        config("0s,1s,1s", Duration::from_millis(300), "127.0.0.1/32"),
    );
    let t0 = Utc::now();
    let o = d.dispatch_due(t0).await.unwrap();
    assert_eq!(o.retried, 1);
    let o = d
        .dispatch_due(t0 + chrono::Duration::seconds(2))
        .await
        .unwrap();
    assert_eq!(o.succeeded, 1);
    let list = deliveries(&app, &tenant, &hook, "").await;
    let detail = app
        .get(&format!(
            "/tenants/{}/webhooks/{}/deliveries/{}",
            tenant["id"].as_str().unwrap(),
            hook["id"].as_str().unwrap(),
            list[0]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(detail.body["attemptsLog"][0]["outcome"], "timeout");
    assert_eq!(detail.body["attemptsLog"][1]["outcome"], "success");
}

#[tokio::test]
async fn retry_after_postpones_the_next_attempt() {
    let db = TestDb::new();
    let app = app(&db).await;
    let rx = WebhookReceiver::start().await;
    rx.script([Reply::status(503).retry_after("120")]);
    let (tenant, _hook) = tenant_with_endpoint(&app, &rx.url).await;
    send_event(&app, &tenant, "gw-evt-busy").await;
    let d = default_dispatcher(&db);
    let t0 = Utc::now();
    assert_eq!(d.dispatch_due(t0).await.unwrap().retried, 1);
    // The schedule alone would retry after about 5 s; the receiver asked for 120 s.
    assert_eq!(
        d.dispatch_due(t0 + chrono::Duration::seconds(60))
            .await
            .unwrap()
            .claimed,
        0
    );
    let o = d
        .dispatch_due(t0 + chrono::Duration::seconds(121))
        .await
        .unwrap();
    assert_eq!(o.succeeded, 1);
}

#[tokio::test]
async fn gone_disables_the_endpoint() {
    let db = TestDb::new();
    let app = app(&db).await;
    let rx = WebhookReceiver::start().await;
    rx.set_default(Reply::status(410));
    let (tenant, hook) = tenant_with_endpoint(&app, &rx.url).await;
    send_event(&app, &tenant, "gw-evt-a").await;
    let d = default_dispatcher(&db);
    let o = d.dispatch_due(Utc::now()).await.unwrap();
    assert_eq!(o.failed, 1);
    let path = format!(
        "/tenants/{}/webhooks/{}",
        tenant["id"].as_str().unwrap(),
        hook["id"].as_str().unwrap()
    );
    let got = app.get(&path).await;
    assert_eq!(got.body["enabled"], false);
    assert_eq!(got.body["disabledReason"], "gone");
    // Later events are not enqueued for a disabled endpoint.
    let accepted = send_event(&app, &tenant, "gw-evt-b").await;
    assert_eq!(accepted["deliveries"], 0);
    assert_eq!(rx.count(), 1);
    // Enabling it again clears the reason.
    let r = app
        .patch(&path, &serde_json::json!({"enabled": true}))
        .await;
    assert_eq!(r.body["enabled"], true);
    assert!(r.body["disabledReason"].is_null());
}

#[tokio::test]
async fn exhausted_deliveries_are_dead_letters_and_can_be_replayed() {
    let db = TestDb::new();
    let app = app(&db).await;
    let rx = WebhookReceiver::start().await;
    rx.script([Reply::status(500), Reply::status(500)]);
    let (tenant, hook) = tenant_with_endpoint(&app, &rx.url).await;
    send_event(&app, &tenant, "gw-evt-dead").await;
    let d = dispatcher(&db, config("0s,1s", Duration::from_secs(2), "127.0.0.1/32"));
    let t0 = Utc::now();
    assert_eq!(d.dispatch_due(t0).await.unwrap().retried, 1);
    assert_eq!(
        d.dispatch_due(t0 + chrono::Duration::seconds(2))
            .await
            .unwrap()
            .failed,
        1
    );
    let dead = deliveries(&app, &tenant, &hook, "?status=failed").await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["lastStatusCode"], 500);
    assert!(
        deliveries(&app, &tenant, &hook, "?status=pending")
            .await
            .is_empty()
    );

    let base = format!(
        "/tenants/{}/webhooks/{}/deliveries/{}",
        tenant["id"].as_str().unwrap(),
        hook["id"].as_str().unwrap(),
        dead[0]["id"].as_str().unwrap()
    );
    let r = app
        .post(&format!("{base}/replay"), &serde_json::json!({}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body["status"], "pending");
    // A pending delivery cannot be replayed again.
    app.post(&format!("{base}/replay"), &serde_json::json!({}))
        .await
        .assert_error(reqwest::StatusCode::CONFLICT, "conflict");
    let o = d.dispatch_due(Utc::now()).await.unwrap();
    assert_eq!(o.succeeded, 1);
    assert_eq!(app.get(&base).await.body["status"], "succeeded");
    assert_eq!(rx.count(), 3);
    app.get(&format!(
        "{}/webhooks/x/deliveries",
        &base[..base.find("/webhooks").unwrap()]
    ))
    .await
    .assert_error(reqwest::StatusCode::BAD_REQUEST, "invalid_path");
}

#[tokio::test]
async fn during_a_rotation_both_secrets_verify() {
    let db = TestDb::new();
    let app = app(&db).await;
    let rx = WebhookReceiver::start().await;
    let (tenant, hook) = tenant_with_endpoint(&app, &rx.url).await;
    let old = hook["secret"].as_str().unwrap().to_owned();
    let path = format!(
        "/tenants/{}/webhooks/{}",
        tenant["id"].as_str().unwrap(),
        hook["id"].as_str().unwrap()
    );
    let r = app
        .post(&format!("{path}/rotate-secret"), &serde_json::json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let new = r.body["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(r.body["previousSecretExpiresAt"].is_string());

    let r = app
        .post(&format!("{path}/test"), &serde_json::json!({}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let d = default_dispatcher(&db);
    assert_eq!(d.dispatch_due(Utc::now()).await.unwrap().succeeded, 1);
    let req = &rx.requests()[0];
    assert_eq!(req.json()["type"], "webhook.test");
    assert_eq!(req.header("webhook-signature").split(' ').count(), 2);
    assert!(verifies(&new, req), "the new secret verifies");
    assert!(verifies(&old, req), "the old secret still verifies");
    capture(&[&new, &old], req);
    // After the overlap window only the new secret signs.
    send_event(&app, &tenant, "gw-evt-after").await;
    let later = Utc::now() + chrono::Duration::days(2);
    assert_eq!(d.dispatch_due(later).await.unwrap().succeeded, 1);
    let req = &rx.requests()[1];
    assert_eq!(req.header("webhook-signature").split(' ').count(), 1);
}
