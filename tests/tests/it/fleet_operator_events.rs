//! The operator's webhook endpoints and the fleet's events (issue 25), through a real server on
//! both backends and real receivers on 127.0.0.1: `/operator/webhooks` is operators-only and
//! audited, its endpoints receive `tenant.unplaced` and `tenant.placed` signed like a tenant's
//! deliveries, a lapsed gateway is announced once as `gateway.stranded`, and no tenant sees an
//! operator endpoint or event.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chrono::Utc;
use moltbot_saas_tests::{Captured, TestApp, TestDb, WebhookReceiver, spawn_app_with};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenant_store::purge::PlanScope;

use crate::fleet::{Gw, gateway_of};
use crate::webhooks_support::{self, default_dispatcher, verifies};

/// A server whose own dispatcher is off (the test drives one), allowing 127.0.0.1, with a
/// lease of 5 s and a margin of 1 s.
pub(crate) async fn app(db: &TestDb) -> TestApp {
    let mut settings = webhooks_support::settings(db);
    settings.fleet.lease = Duration::from_secs(5);
    settings.fleet.margin = Duration::from_secs(1);
    spawn_app_with(settings).await
}

pub(crate) async fn operator_endpoint(app: &TestApp, url: &str, types: &[&str]) -> Value {
    let r = app
        .post(
            "/operator/webhooks",
            &json!({"url": url, "eventTypes": types, "description": "fleet pager"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        r.headers.get("cache-control").unwrap().to_str().unwrap(),
        "no-store"
    );
    assert_eq!(
        r.headers.get("location").unwrap().to_str().unwrap(),
        format!("/operator/webhooks/{}", r.body["id"].as_str().unwrap())
    );
    assert!(r.body["secret"].as_str().unwrap().starts_with("whsec_"));
    r.body
}

pub(crate) async fn audit_actions(app: &TestApp, action: &str) -> Vec<Value> {
    let r = app.get(&format!("/audit?action={action}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["events"].as_array().unwrap().clone()
}

#[tokio::test]
async fn operator_endpoints_get_unplaced_and_placed_signed_and_tenants_never_see_them() {
    let db = TestDb::new();
    let app = app(&db).await;
    let rx = WebhookReceiver::start().await;
    let hook = operator_endpoint(&app, &rx.url, &["tenant.unplaced", "tenant.placed"]).await;
    let (hook_id, secret) = (
        hook["id"].as_str().unwrap().to_owned(),
        hook["secret"].as_str().unwrap().to_owned(),
    );
    assert_eq!(
        hook["eventTypes"],
        json!(["tenant.unplaced", "tenant.placed"])
    );
    assert!(hook.get("tenantId").is_none(), "{hook}");
    assert_eq!(
        audit_actions(&app, "operator_webhook.created").await[0]["resourceId"],
        hook_id.as_str()
    );

    // Bad input.
    app.post(
        "/operator/webhooks",
        &json!({"url": rx.url, "eventTypes": ["message.received"]}),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    app.post("/operator/webhooks", &json!({"url": "ftp://example.com/x"}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    app.get("/operator/webhooks/not-a-uuid")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_path");
    app.get(&format!("/operator/webhooks/{}", uuid::Uuid::new_v4()))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");

    // No room anywhere: the new tenant is unplaced, and the operator hears of it.
    crate::fleet::close_default(&app).await;
    let tenant = app.create_tenant("No Room").await;
    let id = tenant["id"].as_str().unwrap().to_owned();
    let p = crate::fleet::placement(&app, &id).await;
    assert_eq!(p["state"], "unplaced", "{p}");

    // A tenant cannot subscribe to the fleet's events, and never sees the operator's endpoint.
    app.post(
        &format!("/tenants/{id}/webhooks"),
        &json!({"url": rx.url, "eventTypes": ["tenant.unplaced"]}),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let r = app
        .post(
            &format!("/tenants/{id}/api-keys"),
            &json!({"name": "owner", "role": "owner"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let key = r.body["apiKey"].as_str().unwrap().to_owned();
    let own = app
        .request_as(
            Some(&key),
            Method::GET,
            &format!("/tenants/{id}/webhooks"),
            None,
        )
        .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    assert_eq!(own.body["webhooks"], json!([]), "{}", own.text);
    for (method, path) in [
        (Method::GET, "/operator/webhooks".to_owned()),
        (Method::GET, format!("/operator/webhooks/{hook_id}")),
        (Method::DELETE, format!("/operator/webhooks/{hook_id}")),
    ] {
        app.request_as(Some(&key), method.clone(), &path, None)
            .await
            .assert_error(StatusCode::FORBIDDEN, "forbidden");
        // A gateway token is no credential here.
        app.request_as(Some(&app.gateway_token), method, &path, None)
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let r = app
        .request_as(
            Some(&key),
            Method::POST,
            "/operator/webhooks",
            Some(&json!({"url": rx.url})),
        )
        .await;
    r.assert_error(StatusCode::FORBIDDEN, "forbidden");

    // Delivered by the dispatcher, signed with the endpoint's secret.
    let d = default_dispatcher(&db);
    let o = d.dispatch_due(Utc::now()).await.unwrap();
    assert_eq!((o.claimed, o.succeeded), (1, 1), "{o:?}");
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 1);
    assert!(verifies(&secret, &reqs[0]), "the signature verifies");
    let body = reqs[0].json();
    assert_eq!(body["type"], "tenant.unplaced", "{body}");
    assert_eq!(body["data"]["tenantId"], id.as_str(), "{body}");
    assert_eq!(body["data"]["want"], "shared", "{body}");
    assert!(body["id"].as_str().unwrap().starts_with("evt_"), "{body}");

    // Room appears and the operator places the tenant: `tenant.placed`.
    let gid = gateway_of(&app, "pool-a", "shared", 5).await.id;
    let r = app
        .post(
            &format!("/tenants/{id}/placement"),
            &json!({"gatewayId": gid}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["state"], "placed", "{}", r.text);
    let o = d.dispatch_due(Utc::now()).await.unwrap();
    assert_eq!((o.claimed, o.succeeded), (1, 1), "{o:?}");
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2);
    assert!(verifies(&secret, &reqs[1]));
    let body = reqs[1].json();
    assert_eq!(body["type"], "tenant.placed", "{body}");
    assert_eq!(body["data"]["tenantId"], id.as_str(), "{body}");
    assert_eq!(body["data"]["gatewayId"], gid.as_str(), "{body}");
    // The tenant's own deliveries and audit hold nothing of it.
    let own = app
        .request_as(
            Some(&key),
            Method::GET,
            &format!("/tenants/{id}/webhooks"),
            None,
        )
        .await;
    assert_eq!(own.body["webhooks"], json!([]), "{}", own.text);

    // Read, change, delete.
    let r = app.get("/operator/webhooks").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["webhooks"].as_array().unwrap().len(),
        1,
        "{}",
        r.text
    );
    assert!(!r.text.contains(&secret), "a secret is shown once");
    let r = app
        .patch(
            &format!("/operator/webhooks/{hook_id}"),
            &json!({"enabled": false, "description": null, "eventTypes": ["gateway.stranded"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["enabled"], false, "{}", r.text);
    assert_eq!(r.body["description"], Value::Null, "{}", r.text);
    assert_eq!(
        r.body["eventTypes"],
        json!(["gateway.stranded"]),
        "{}",
        r.text
    );
    let r = app.delete(&format!("/operator/webhooks/{hook_id}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    app.get(&format!("/operator/webhooks/{hook_id}"))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(
        audit_actions(&app, "operator_webhook.updated").await.len(),
        1
    );
    assert_eq!(
        audit_actions(&app, "operator_webhook.deleted").await.len(),
        1
    );

    // The operator's events follow the default retention, whatever the plans' own: its two
    // events (their deliveries went with the endpoint) are purged with the plans not named.
    let mut conn = db.connect();
    let later = Utc::now() + chrono::Duration::seconds(1);
    let only = tenant_store::purge::old_events(
        &mut conn,
        later,
        PlanScope::Only(&["pro"]),
        &mut Default::default(),
        100,
    );
    assert_eq!(
        only.unwrap().deleted,
        0,
        "a plan's retention takes no operator event"
    );
    let rest = tenant_store::purge::old_events(
        &mut conn,
        later,
        PlanScope::Except(&["pro"]),
        &mut Default::default(),
        100,
    );
    assert_eq!(
        rest.unwrap().deleted,
        2,
        "the default retention takes the operator's events"
    );
    rx.stop().await;
}

#[tokio::test]
async fn a_gateway_whose_lease_lapsed_holding_tenants_is_announced_once() {
    let db = TestDb::new();
    let app = app(&db).await;
    let rx = WebhookReceiver::start().await;
    let hook = operator_endpoint(&app, &rx.url, &[]).await;
    let secret = hook["secret"].as_str().unwrap().to_owned();
    crate::fleet::close_default(&app).await;
    // A dedicated gateway is never failed over: its lapse strands its tenant.
    let Gw { id: gid, token } = gateway_of(&app, "cell-a", "dedicated", 1).await;
    let tenant = app.create_tenant("Cell Tenant").await;
    let id = tenant["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/tenants/{id}/placement"),
            &json!({"gatewayId": gid}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .request_as(
            Some(&token),
            Method::POST,
            "/gateway/heartbeat",
            Some(&json!({"etag": "\"none\"", "fencing": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let d = default_dispatcher(&db);
    let since = Instant::now();
    let stranded = loop {
        d.dispatch_due(Utc::now()).await.unwrap();
        let found = rx
            .requests()
            .into_iter()
            .find(|r| r.json()["type"] == "gateway.stranded");
        if let Some(found) = found {
            break found;
        }
        assert!(
            since.elapsed() < Duration::from_secs(40),
            "no gateway.stranded event; got {:?}",
            rx.requests().iter().map(Captured::json).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(verifies(&secret, &stranded));
    let body = stranded.json();
    assert_eq!(body["data"]["gatewayId"], gid.as_str(), "{body}");
    assert_eq!(body["data"]["name"], "cell-a", "{body}");
    assert_eq!(body["data"]["kind"], "dedicated", "{body}");
    assert_eq!(body["data"]["stranded"], 1, "{body}");
    assert_eq!(body["data"]["failedOver"], 0, "{body}");
    assert_eq!(body["data"]["reason"], "dedicated", "{body}");
    // Later sweeps find it stranded still, and announce nothing more.
    tokio::time::sleep(Duration::from_secs(3)).await;
    d.dispatch_due(Utc::now()).await.unwrap();
    let count = rx
        .requests()
        .iter()
        .filter(|r| r.json()["type"] == "gateway.stranded")
        .count();
    assert_eq!(count, 1, "announced once per lapse");
    // The tenant's own view holds no operator event.
    let r = app.get(&format!("/tenants/{id}/webhooks")).await;
    assert_eq!(r.body["webhooks"], json!([]), "{}", r.text);
    rx.stop().await;
}
