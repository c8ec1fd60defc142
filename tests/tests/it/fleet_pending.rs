//! Tenants waiting for room (issue 25), through a real server on both backends: tenants left
//! `unplaced` by full gateways are placed by themselves, oldest first and never past a
//! capacity, when a gateway is created, a capacity raised, a gateway reopened or back up, or a
//! tenant deleted, each announced to the operator's webhooks as `tenant.placed`; an operator places
//! them on demand with `POST /gateways/place-pending` (operators only) or the CLI's
//! `gateways place-pending`, whatever the automatic runs (held off here by their lease) do.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chrono::Utc;
use moltbot_saas_tests::{TestApp, TestDb, WebhookReceiver, spawn_app_with, test_settings};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::fleet::{Gw, gateway_of, held, placement};
use crate::fleet_operator_events::{app, audit_actions, operator_endpoint};
use crate::webhooks_support::{default_dispatcher, verifies};

/// Waits (at most 30 s) until the tenant is `placed`; its placement.
pub(crate) async fn placed(app: &TestApp, tenant: &str) -> Value {
    let since = Instant::now();
    loop {
        let p = placement(app, tenant).await;
        if p["state"] == "placed" {
            return p;
        }
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "{tenant} is still not placed: {p}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Another replica's automatic placing of waiting tenants holds its lease (for a day): this
/// server's automatic runs stand aside, so only what a test does places anyone.
pub(crate) fn hold_pending_lease(db: &TestDb) {
    let now = Utc::now();
    assert!(
        tenant_store::purge::try_lease(
            &mut db.connect(),
            tenant_service::fleet::pending::LEASE,
            "another-replica",
            now,
            now + chrono::Duration::days(1),
        )
        .unwrap()
    );
}

/// A server whose enterprise tenants want a dedicated gateway, `default` closed (capacity 0)
/// and the automatic placing held off by another replica's lease.
async fn closed_default_app(db: &TestDb) -> TestApp {
    let mut settings = test_settings(db);
    settings.fleet.dedicated_plans = vec![tenant_core::Plan::Enterprise];
    let app = spawn_app_with(settings).await;
    hold_pending_lease(db);
    crate::fleet::close_default(&app).await;
    app
}

async fn tenant(app: &TestApp, name: &str) -> String {
    app.create_tenant(name).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn place_pending(app: &TestApp) -> Value {
    let r = app
        .request(Method::POST, "/gateways/place-pending", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}

async fn capacity_is_kept(app: &TestApp) {
    let r = app.get("/gateways").await;
    for g in r.body["gateways"].as_array().unwrap() {
        if let Some(capacity) = g["capacity"].as_i64() {
            assert!(
                g["tenants"].as_i64().unwrap() <= capacity,
                "overfilled: {g}"
            );
        }
    }
}

/// The `tenant.placed` audit entry of a tenant: (actor type, reason).
async fn placed_audit(app: &TestApp, tenant: &str) -> (String, String) {
    let entries = audit_actions(app, "tenant.placed").await;
    let e = entries
        .iter()
        .find(|e| e["resourceId"] == tenant)
        .unwrap_or_else(|| panic!("no tenant.placed entry for {tenant}: {entries:?}"));
    (
        e["actor"]["type"].as_str().unwrap().to_owned(),
        e["details"]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[tokio::test]
async fn waiting_tenants_are_placed_by_themselves_when_room_appears() {
    let db = TestDb::new();
    let app = app(&db).await;
    let rx = WebhookReceiver::start().await;
    let hook = operator_endpoint(&app, &rx.url, &["tenant.placed"]).await;
    let secret = hook["secret"].as_str().unwrap().to_owned();
    crate::fleet::close_default(&app).await;
    let a = gateway_of(&app, "a", "shared", 1).await.id;
    let t1 = tenant(&app, "T1").await;
    assert_eq!(placement(&app, &t1).await["gatewayId"], a.as_str());
    let t2 = tenant(&app, "T2").await;
    let t3 = tenant(&app, "T3").await;
    for t in [&t2, &t3] {
        assert_eq!(placement(&app, t).await["state"], "unplaced");
    }

    // A gateway created with room for one: the oldest waiting tenant takes it.
    let b = gateway_of(&app, "b", "shared", 1).await.id;
    assert_eq!(placed(&app, &t2).await["gatewayId"], b.as_str());
    // The younger one still waits: nobody else has room (asked on demand: nothing to place).
    assert_eq!(
        place_pending(&app).await,
        json!({"placed": 0, "unplaced": 1})
    );
    assert_eq!(placement(&app, &t3).await["state"], "unplaced");
    assert_eq!(held(&app, &b).await, 1);

    // Its capacity raised: the other one too.
    let r = app
        .patch(&format!("/gateways/{b}"), &json!({"capacity": 2}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(placed(&app, &t3).await["gatewayId"], b.as_str());

    // A draining gateway takes nobody; reopened, it takes the waiting tenant.
    let c = gateway_of(&app, "c", "shared", 1).await.id;
    let r = app
        .request(Method::POST, &format!("/gateways/{c}/drain"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let t4 = tenant(&app, "T4").await;
    assert_eq!(placement(&app, &t4).await["state"], "unplaced");
    let r = app
        .patch(&format!("/gateways/{c}"), &json!({"draining": false}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(placed(&app, &t4).await["gatewayId"], c.as_str());

    // A tenant deleted: its room goes to the waiting one.
    let t5 = tenant(&app, "T5").await;
    assert_eq!(placement(&app, &t5).await["state"], "unplaced");
    let r = app
        .request(Method::DELETE, &format!("/tenants/{t1}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(placed(&app, &t5).await["gatewayId"], a.as_str());

    // Never past a capacity; nobody waits.
    capacity_is_kept(&app).await;
    assert_eq!((held(&app, &a).await, held(&app, &b).await), (1, 2));
    assert_eq!(held(&app, &c).await, 1);
    assert_eq!(
        place_pending(&app).await,
        json!({"placed": 0, "unplaced": 0})
    );

    // Audited as the system's, with why (a periodic run may have come first).
    let expected = [
        (&t2, "gateway_created"),
        (&t3, "capacity_changed"),
        (&t4, "gateway_reopened"),
        (&t5, "tenant_left"),
    ];
    for (t, why) in expected {
        let (actor, reason) = placed_audit(&app, t).await;
        assert_eq!(actor, "system", "{t}");
        assert!(reason == why || reason == "periodic", "{t}: {reason}");
    }

    // Each announced to the operator's endpoint, signed.
    let d = default_dispatcher(&db);
    let o = d.dispatch_due(Utc::now()).await.unwrap();
    assert_eq!((o.claimed, o.succeeded), (4, 4), "{o:?}");
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 4);
    for r in &reqs {
        assert!(verifies(&secret, r), "the signature verifies");
    }
    for (t, why) in expected {
        let body = reqs
            .iter()
            .map(|r| r.json())
            .find(|b| b["data"]["tenantId"] == t.as_str())
            .unwrap_or_else(|| panic!("no event for {t}"));
        assert_eq!(body["type"], "tenant.placed", "{body}");
        let reason = body["data"]["reason"].as_str().unwrap();
        assert!(reason == why || reason == "periodic", "{body}");
    }
    let on = |t: &str| {
        reqs.iter()
            .map(|r| r.json())
            .find(|b| b["data"]["tenantId"] == t)
            .unwrap()["data"]["gatewayId"]
            .clone()
    };
    assert_eq!(on(&t2), json!(b));
    assert_eq!(on(&t5), json!(a));
    rx.stop().await;
    crate::fleet_loads::exact(
        &db,
        "waiting tenants are placed by themselves when room appears",
    );
}

// Several threads: the CLI runs (blocking) while the server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_places_waiting_tenants_on_demand() {
    let db = TestDb::new();
    let app = closed_default_app(&db).await;
    let t1 = tenant(&app, "Old").await;
    let t2 = tenant(&app, "Older Than T3").await;
    let ent = app
        .create_tenant_with(&json!({"name": "Big Co", "plan": "enterprise"}))
        .await;
    let ent = ent["id"].as_str().unwrap().to_owned();
    let t3 = tenant(&app, "Young").await;
    let Gw {
        id: pool,
        token: pool_token,
    } = gateway_of(&app, "pool", "shared", 2).await;
    let cell = gateway_of(&app, "cell", "dedicated", 1).await.id;
    for t in [&t1, &t2, &ent, &t3] {
        assert_eq!(placement(&app, t).await["state"], "unplaced", "{t}");
    }

    // Only an operator: a tenant's key is forbidden, a gateway token is no credential here.
    let r = app
        .post(
            &format!("/tenants/{t1}/api-keys"),
            &json!({"name": "owner", "role": "owner"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let key = r.body["apiKey"].as_str().unwrap().to_owned();
    app.request_as(Some(&key), Method::POST, "/gateways/place-pending", None)
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    for token in [app.gateway_token.as_str(), pool_token.as_str()] {
        app.request_as(Some(token), Method::POST, "/gateways/place-pending", None)
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    app.request_as(None, Method::POST, "/gateways/place-pending", None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(placement(&app, &t1).await["state"], "unplaced");

    // The operator: the two oldest on the pool (its capacity), the enterprise tenant on the
    // cell, the youngest waits.
    assert_eq!(
        place_pending(&app).await,
        json!({"placed": 3, "unplaced": 1})
    );
    for (t, on) in [(&t1, &pool), (&t2, &pool), (&ent, &cell)] {
        let p = placement(&app, t).await;
        assert_eq!(
            (p["state"].as_str(), p["gatewayId"].as_str()),
            (Some("placed"), Some(on.as_str())),
            "{t}: {p}"
        );
    }
    assert_eq!(placement(&app, &t3).await["state"], "unplaced");
    assert_eq!(held(&app, &pool).await, 2);
    capacity_is_kept(&app).await;
    assert_eq!(
        placed_audit(&app, &t1).await,
        ("service_token".to_owned(), "place_pending".to_owned())
    );
    assert_eq!(
        place_pending(&app).await,
        json!({"placed": 0, "unplaced": 1})
    );

    // The CLI, straight on the database (audited as `cli`).
    let r = app
        .patch(&format!("/gateways/{pool}"), &json!({"capacity": 3}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        placement(&app, &t3).await["state"],
        "unplaced",
        "the lease is held"
    );
    let out = crate::config_sync::run(&db, &["gateways", "place-pending"]);
    let printed: Value = serde_json::from_str(&crate::config_sync::succeed(&out)).unwrap();
    assert_eq!(printed, json!({"placed": 1, "unplaced": 0}));
    assert_eq!(placement(&app, &t3).await["gatewayId"], pool.as_str());
    assert_eq!(
        placed_audit(&app, &t3).await,
        ("cli".to_owned(), "place_pending".to_owned())
    );
    capacity_is_kept(&app).await;
    crate::fleet_loads::exact(&db, "an operator places waiting tenants on demand");
}

/// A new tenant queues behind the tenants waiting for room: when room appeared that no
/// automatic run has used yet (another replica holds their lease here), the waiting tenant
/// takes it as the new tenant is placed, and the new one waits. A waiting tenant that cannot
/// use the room (it wants a dedicated gateway) keeps nobody from it.
#[tokio::test]
async fn a_new_tenant_queues_behind_tenants_waiting_for_room() {
    let db = TestDb::new();
    let app = closed_default_app(&db).await;
    let pool = gateway_of(&app, "pool", "shared", 1).await.id;
    let first = tenant(&app, "First").await;
    assert_eq!(placement(&app, &first).await["gatewayId"], pool.as_str());
    let ent = app
        .create_tenant_with(&json!({"name": "Big Co", "plan": "enterprise"}))
        .await;
    let ent = ent["id"].as_str().unwrap().to_owned();
    let waiting = tenant(&app, "Waiting").await;
    assert_eq!(placement(&app, &waiting).await["state"], "unplaced");

    // Room for one more; no automatic run uses it (the lease is elsewhere).
    let r = app
        .patch(&format!("/gateways/{pool}"), &json!({"capacity": 2}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(placement(&app, &waiting).await["state"], "unplaced");

    // A new tenant: the waiting one takes the room, the new one waits behind it.
    let late = tenant(&app, "Late").await;
    let p = placement(&app, &waiting).await;
    assert_eq!(
        (p["state"].as_str(), p["gatewayId"].as_str()),
        (Some("placed"), Some(pool.as_str())),
        "{p}"
    );
    assert_eq!(
        placed_audit(&app, &waiting).await,
        ("system".to_owned(), "tenant_created".to_owned())
    );
    assert_eq!(placement(&app, &late).await["state"], "unplaced");
    assert_eq!(placement(&app, &ent).await["state"], "unplaced");
    assert_eq!(held(&app, &pool).await, 2);
    crate::fleet_loads::exact(&db, "a new tenant queued behind a waiting one");
}

#[tokio::test]
async fn a_gateway_back_up_takes_the_tenants_waiting_for_it() {
    let db = TestDb::new();
    let mut settings = test_settings(&db);
    // The shortest lease the settings allow: a silent gateway is down after 5 s.
    settings.fleet.lease = Duration::from_secs(5);
    settings.fleet.margin = Duration::from_secs(1);
    let app = spawn_app_with(settings).await;
    crate::fleet::close_default(&app).await;
    let gw = gateway_of(&app, "pool", "shared", 2).await;
    let beat = json!({"etag": "\"none\"", "fencing": true});
    let heartbeat = || {
        app.request_as(
            Some(&gw.token),
            Method::POST,
            "/gateway/heartbeat",
            Some(&beat),
        )
    };
    let r = heartbeat().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let health = || async { app.get(&format!("/gateways/{}", gw.id)).await.body["health"].clone() };
    assert_eq!(health().await, "up");

    // Silent past its lease: down, so a new tenant is placed nowhere.
    let since = Instant::now();
    while health().await != "down" {
        assert!(since.elapsed() < Duration::from_secs(30), "never down");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let t = tenant(&app, "Waits For Pool").await;
    assert_eq!(placement(&app, &t).await["state"], "unplaced");

    // Its next heartbeat: up again, and the waiting tenant goes to it by itself.
    let r = heartbeat().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(health().await, "up");
    assert_eq!(placed(&app, &t).await["gatewayId"], gw.id.as_str());
    let (actor, reason) = placed_audit(&app, &t).await;
    assert_eq!(actor, "system");
    assert!(reason == "gateway_up" || reason == "periodic", "{reason}");
    capacity_is_kept(&app).await;
}
