//! The gateway fleet through a real server (issue 25): gateways as an operator resource with a
//! token shown once, placement of new tenants (most free room, never past a capacity), each
//! gateway reading only its own document, and a move that waits for the source's
//! acknowledgement so that no account is ever in two gateways' documents. On both backends.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use moltbot_saas_tests::{TestApp, TestDb, TestResponse, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const DEFAULT: &str = "00000000-0000-0000-0000-000000000000";
const TELEGRAM_TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

/// A gateway as created: its id and token.
pub(crate) struct Gw {
    pub(crate) id: String,
    pub(crate) token: String,
}

async fn gateway(app: &TestApp, name: &str, capacity: i64) -> Gw {
    gateway_of(app, name, "shared", capacity).await
}

/// Closes the built-in gateway `default` to new tenants (capacity 0), as a fleet does.
pub(crate) async fn close_default(app: &TestApp) {
    let r = app
        .patch(&format!("/gateways/{DEFAULT}"), &json!({"capacity": 0}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

/// Adds a gateway of `kind` (`shared`, `dedicated`) as the operator.
pub(crate) async fn gateway_of(app: &TestApp, name: &str, kind: &str, capacity: i64) -> Gw {
    let r = app
        .post(
            "/gateways",
            &json!({"name": name, "kind": kind, "capacity": capacity}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    Gw {
        id: r.body["id"].as_str().unwrap().to_owned(),
        token: r.body["token"].as_str().unwrap().to_owned(),
    }
}

pub(crate) async fn placement(app: &TestApp, tenant: &str) -> Value {
    let r = app.get(&format!("/tenants/{tenant}/placement")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}

async fn config_as(app: &TestApp, token: &str) -> TestResponse {
    app.request_as(Some(token), Method::GET, "/config", None)
        .await
}

/// The Telegram account ids a document serves.
pub(crate) fn accounts(doc: &Value) -> Vec<String> {
    doc["channels"]["telegram"]["accounts"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn agents(doc: &Value) -> Vec<String> {
    doc["agents"]["entries"]
        .as_object()
        .map(|m| {
            m.keys()
                .filter(|k| k.starts_with("agent-"))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) async fn held(app: &TestApp, id: &str) -> i64 {
    let r = app.get(&format!("/gateways/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["tenants"].as_i64().unwrap()
}

/// Gives tenant `id` a Telegram channel (an account the gateway documents serve).
pub(crate) async fn add_telegram(app: &TestApp, id: &str) {
    let r = app
        .post(
            &format!("/tenants/{id}/channels"),
            &json!({"channel": "telegram", "credentials": {"botToken": TELEGRAM_TOKEN}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

/// With `default` full: gateway `a`, a tenant with a Telegram channel (placed on `a`), then an
/// empty gateway `b`. Returns the created tenant (with `apiKey`), `a` and `b`.
async fn tenant_on_a_then_b(app: &TestApp) -> (Value, Gw, Gw) {
    close_default(app).await;
    let a = gateway(app, "a", 5).await;
    let t = app.create_tenant("Moving Co").await;
    add_telegram(app, t["id"].as_str().unwrap()).await;
    let b = gateway(app, "b", 5).await;
    (t, a, b)
}

#[tokio::test]
async fn gateways_are_an_operator_resource_with_a_token_shown_once() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let acme = app.create_tenant("Acme").await;

    // The built-in gateway holds every tenant of a single-gateway setup, with no row written.
    let list = app.get("/gateways").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let gws = list.body["gateways"].as_array().unwrap();
    assert_eq!(gws.len(), 1);
    assert_eq!(gws[0]["id"], DEFAULT);
    assert_eq!(gws[0]["name"], "default");
    assert_eq!(gws[0]["tenants"], 1);
    assert_eq!(gws[0]["capacity"], Value::Null);
    assert_eq!(gws[0]["health"], "unknown");
    assert_eq!(gws[0]["tokenPrefix"], Value::Null);
    let mut conn = db.connect();
    assert_eq!(
        tenant_store::gateways::held_counts(&mut conn).unwrap(),
        vec![(tenant_core::GatewayId::DEFAULT, 1)]
    );
    drop(conn);

    let pool = gateway(&app, "pool-1", 10).await;
    assert!(pool.token.starts_with("msgw_"), "a gateway token");
    let read = app.get(&format!("/gateways/{}", pool.id)).await;
    assert_eq!(read.body["kind"], "shared");
    assert_eq!(read.body["capacity"], 10);
    assert!(
        read.body.get("token").is_none(),
        "shown once: {}",
        read.text
    );
    assert!(!read.text.contains(&pool.token));
    assert_eq!(read.body["tokenPrefix"].as_str().unwrap(), &pool.token[..9]);

    app.post("/gateways", &json!({"name": "pool-1", "capacity": 1}))
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    let bad = app
        .post(
            "/gateways",
            &json!({"name": "Default", "kind": "dedicated", "capacity": 3}),
        )
        .await;
    bad.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(bad.invalid_fields(), vec!["name", "capacity"]);
    app.post("/gateways", &json!({"name": "pool-2"}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    app.request(
        Method::POST,
        &format!("/gateways/{DEFAULT}/rotate-token"),
        None,
    )
    .await
    .assert_error(StatusCode::CONFLICT, "builtin_gateway");
    app.delete(&format!("/gateways/{DEFAULT}"))
        .await
        .assert_error(StatusCode::CONFLICT, "builtin_gateway");
    app.get("/gateways/not-a-uuid")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_path");
    app.get(&format!("/gateways/{}", uuid::Uuid::new_v4()))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");

    // Operators only: a tenant's owner key is refused (403); a gateway's token is no
    // credential outside its own routes (401).
    let owner = acme["apiKey"].as_str().unwrap();
    app.request_as(Some(owner), Method::GET, "/gateways", None)
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    for token in [pool.token.as_str(), app.gateway_token.as_str()] {
        app.request_as(Some(token), Method::GET, "/gateways", None)
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    }

    // Rotation: the old token stops working at once, the new one reads the config.
    let rotated = app
        .request(
            Method::POST,
            &format!("/gateways/{}/rotate-token", pool.id),
            None,
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let new_token = rotated.body["token"].as_str().unwrap();
    assert_ne!(new_token, pool.token);
    config_as(&app, &pool.token)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(config_as(&app, new_token).await.status, StatusCode::OK);

    // Audited, without the token.
    let audit = app.get("/audit?limit=100").await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.text);
    for action in ["gateway.created", "gateway.token_rotated"] {
        assert!(audit.text.contains(action), "{action}: {}", audit.text);
    }
    assert!(!audit.text.contains(new_token) && !audit.text.contains(&pool.token));

    // An empty gateway can be deleted; its token is then refused.
    assert_eq!(
        app.delete(&format!("/gateways/{}", pool.id)).await.status,
        StatusCode::NO_CONTENT
    );
    config_as(&app, new_token)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn new_tenants_go_to_the_freest_gateway_and_never_past_a_capacity() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    // The built-in gateway takes nobody new once it is full.
    close_default(&app).await;
    let a = gateway(&app, "a", 1).await;
    let b = gateway(&app, "b", 2).await;

    let mut on = Vec::new();
    for name in ["T1", "T2", "T3", "T4"] {
        let t = app.create_tenant(name).await;
        let id = t["id"].as_str().unwrap().to_owned();
        on.push((id.clone(), placement(&app, &id).await));
    }
    // b (2 free) first; then a and b tie at 1 free and `a` sorts first; then b; then no room.
    let expect = [
        (b.id.as_str(), "placed"),
        (a.id.as_str(), "placed"),
        (b.id.as_str(), "placed"),
        ("", "unplaced"),
    ];
    for ((id, p), (gw, state)) in on.iter().zip(expect) {
        assert_eq!(p["state"], state, "{id}: {p}");
        if state == "placed" {
            assert_eq!(p["gatewayId"], gw, "{id}: {p}");
        } else {
            assert_eq!(p["gatewayId"], Value::Null);
        }
    }
    assert_eq!(held(&app, &a.id).await, 1);
    assert_eq!(held(&app, &b.id).await, 2);
    assert_eq!(held(&app, DEFAULT).await, 0);

    // A capacity below what a gateway holds is refused with the count.
    let r = app
        .patch(&format!("/gateways/{}", b.id), &json!({"capacity": 1}))
        .await;
    r.assert_error(StatusCode::CONFLICT, "capacity_below_held");
    assert_eq!(r.body["error"]["details"]["held"], 2);
    assert_eq!(r.body["error"]["details"]["capacity"], 1);
    // Moving to a full gateway: 409 with the counts; to an unknown one: 404.
    let unplaced = &on[3].0;
    let r = app
        .post(
            &format!("/tenants/{unplaced}/placement"),
            &json!({"gatewayId": a.id}),
        )
        .await;
    r.assert_error(StatusCode::CONFLICT, "gateway_full");
    assert_eq!(
        r.body["error"]["details"],
        json!({"held": 1, "capacity": 1})
    );
    app.post(
        &format!("/tenants/{unplaced}/placement"),
        &json!({"gatewayId": uuid::Uuid::new_v4().to_string()}),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");
    // A gateway holding tenants is not deleted.
    let r = app.delete(&format!("/gateways/{}", a.id)).await;
    r.assert_error(StatusCode::CONFLICT, "gateway_not_empty");
    // Room made: the unplaced tenant is placed at once (it is in no document to leave).
    let r = app
        .patch(&format!("/gateways/{}", a.id), &json!({"capacity": 2}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .post(
            &format!("/tenants/{unplaced}/placement"),
            &json!({"gatewayId": a.id}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["state"], "placed");
    assert_eq!(r.body["pinned"], true);
    // A draining gateway takes nobody.
    let c = gateway(&app, "c", 5).await;
    let r = app
        .request(Method::POST, &format!("/gateways/{}/drain", c.id), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    app.post(
        &format!("/tenants/{}/placement", on[0].0),
        &json!({"gatewayId": c.id}),
    )
    .await
    .assert_error(StatusCode::CONFLICT, "gateway_draining");
    crate::fleet_loads::exact(
        &db,
        "new tenants go to the freest gateway and never past a capacity",
    );
}

#[tokio::test]
async fn each_gateway_reads_its_own_document_and_a_move_never_serves_an_account_twice() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let (t, a, b) = tenant_on_a_then_b(&app).await;
    let id = t["id"].as_str().unwrap().to_owned();
    let account = t["accountId"].as_str().unwrap().to_owned();
    let agent = t["agentId"].as_str().unwrap().to_owned();
    assert_eq!(placement(&app, &id).await["gatewayId"], a.id.as_str());

    // Each token reads its own gateway's tenants; the built-in gateway's document lost them.
    let on_a = config_as(&app, &a.token).await;
    assert_eq!(on_a.status, StatusCode::OK, "{}", on_a.text);
    assert_eq!(accounts(&on_a.body), vec![account.clone()]);
    assert_eq!(agents(&on_a.body), vec![agent.clone()]);
    assert!(accounts(&config_as(&app, &b.token).await.body).is_empty());
    let on_default = config_as(&app, &app.gateway_token).await;
    assert!(!on_default.text.contains(&agent), "{}", on_default.text);
    // One gateway's token never reads another's document or another's tenant.
    app.request_as(
        Some(&a.token),
        Method::GET,
        &format!("/config?gateway={}", b.id),
        None,
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_query");
    assert_eq!(
        app.request_as(
            Some(&b.token),
            Method::GET,
            &format!("/tenants/{id}/config"),
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.request_as(
            Some(&a.token),
            Method::GET,
            &format!("/tenants/{id}/config"),
            None
        )
        .await
        .status,
        StatusCode::OK
    );
    // Operators read any gateway's document by id.
    let as_operator = app.get(&format!("/config?gateway={}", a.id)).await;
    assert_eq!(as_operator.text, on_a.text);
    // ETag and 304 per gateway.
    let etag_a = on_a.headers["etag"].to_str().unwrap().to_owned();
    let again = app
        .client
        .get(format!("{}/config", app.address))
        .bearer_auth(&a.token)
        .header("if-none-match", &etag_a)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    // The move: out of a's document at once, into b's only once a acknowledged.
    let r = app
        .post(
            &format!("/tenants/{id}/placement"),
            &json!({"gatewayId": b.id}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["state"], "moving");
    assert_eq!(r.body["gatewayId"], a.id.as_str());
    assert_eq!(r.body["targetGatewayId"], b.id.as_str());
    let served = |doc: &TestResponse| accounts(&doc.body).contains(&account);
    let (doc_a, doc_b) = (
        config_as(&app, &a.token).await,
        config_as(&app, &b.token).await,
    );
    assert!(
        !served(&doc_a) && !served(&doc_b),
        "in neither document while moving"
    );
    // A heartbeat with the old document (which holds the account) renews the lease but does
    // not release the tenant.
    // A heartbeat reports the `ETag` and `X-Config-Revision` of the document it serves.
    let beat = |token: String, doc: &TestResponse| {
        let app = &app;
        let etag = doc.headers["etag"].to_str().unwrap().to_owned();
        let revision: i64 = doc.headers["x-config-revision"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        async move {
            app.request_as(
                Some(&token),
                Method::POST,
                "/gateway/heartbeat",
                Some(&json!({"etag": etag, "revision": revision})),
            )
            .await
        }
    };
    let r = beat(a.token.clone(), &on_a).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"current": false, "released": 0, "leaseSecs": 60})
    );
    assert_eq!(placement(&app, &id).await["state"], "moving");
    assert!(!served(&config_as(&app, &b.token).await));
    // `*` acknowledges nothing.
    let r = app
        .request_as(
            Some(&a.token),
            Method::POST,
            "/gateway/heartbeat",
            Some(&json!({"etag": "*", "revision": i64::MAX})),
        )
        .await;
    assert_eq!(r.body["released"], 0);
    // Another gateway's acknowledgement does not release a's tenant.
    assert_eq!(beat(b.token.clone(), &doc_b).await.body["released"], 0);
    assert_eq!(placement(&app, &id).await["state"], "moving");
    // a now serves its document without the tenant: released, and b serves it.
    // The document without the tenant, claimed at a revision from before the move: a document
    // that old proves nothing about this move.
    let before: i64 = on_a.headers["x-config-revision"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let r = app
        .request_as(
            Some(&a.token),
            Method::POST,
            "/gateway/heartbeat",
            Some(&json!({"etag": doc_a.headers["etag"].to_str().unwrap(), "revision": before})),
        )
        .await;
    assert_eq!(r.body["released"], 0, "{}", r.text);
    let r = beat(a.token.clone(), &doc_a).await;
    assert_eq!(
        r.body,
        json!({"current": true, "released": 1, "leaseSecs": 60})
    );
    let p = placement(&app, &id).await;
    assert_eq!(p["state"], "placed");
    assert_eq!(p["gatewayId"], b.id.as_str());
    assert!(served(&config_as(&app, &b.token).await));
    assert!(!served(&config_as(&app, &a.token).await));
    let gw_a = app.get(&format!("/gateways/{}", a.id)).await;
    assert_eq!(gw_a.body["health"], "up");
    assert_eq!(gw_a.body["tenants"], 0);
    // The heartbeat is a gateway's: operators and tenants are refused.
    let owner = t["apiKey"].as_str().unwrap();
    app.request_as(
        Some(owner),
        Method::POST,
        "/gateway/heartbeat",
        Some(&json!({"etag": "\"x\""})),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
    app.post("/gateway/heartbeat", &json!({"etag": "\"x\""}))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    // A gateway token reaches nothing else: there it is no credential (401).
    app.request_as(Some(&b.token), Method::GET, &format!("/tenants/{id}"), None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    crate::fleet_loads::exact(
        &db,
        "each gateway reads its own document and a move never serves an account twice",
    );
}

#[tokio::test]
async fn draining_moves_tenants_where_there_is_room() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let mut ids = Vec::new();
    for name in ["D1", "D2", "D3"] {
        ids.push(
            app.create_tenant(name).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let pool = gateway(&app, "pool", 2).await;
    let r = app
        .request(Method::POST, &format!("/gateways/{DEFAULT}/drain"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["moving"], 2);
    assert_eq!(r.body["remaining"], 1);
    assert_eq!(r.body["gateway"]["draining"], true);
    // The two oldest move (in neither document until `default` acknowledges); the third stays.
    for (i, id) in ids.iter().enumerate() {
        let p = placement(&app, id).await;
        if i < 2 {
            assert_eq!(p["state"], "moving", "{p}");
            assert_eq!(p["targetGatewayId"], pool.id.as_str());
        } else {
            assert_eq!(p["state"], "placed", "{p}");
            assert_eq!(p["gatewayId"], DEFAULT);
        }
    }
    assert_eq!(held(&app, &pool.id).await, 2);
    // New tenants find no room: unplaced, never on the draining gateway.
    let late = app.create_tenant("Late").await;
    assert_eq!(
        placement(&app, late["id"].as_str().unwrap()).await["state"],
        "unplaced"
    );
    // Reopened, it takes tenants again.
    let r = app
        .patch(&format!("/gateways/{DEFAULT}"), &json!({"draining": false}))
        .await;
    assert_eq!(r.body["draining"], false);
    let later = app.create_tenant("Later").await;
    assert_eq!(
        placement(&app, later["id"].as_str().unwrap()).await["gatewayId"],
        DEFAULT
    );
    crate::fleet_loads::exact(&db, "draining moves tenants where there is room");
}

#[tokio::test]
async fn two_servers_placing_at_once_never_overfill_a_gateway() {
    let db = TestDb::new();
    let one = spawn_app(&db).await;
    let mut settings = moltbot_saas_tests::test_settings(&db);
    settings.admin_token = Some(tenant_core::Secret::new(one.operator_token.clone()));
    let two = moltbot_saas_tests::spawn_app_with(settings).await;
    close_default(&one).await;
    let mut tenants = Vec::new();
    for i in 0..6 {
        tenants.push(
            one.create_tenant(&format!("R{i}")).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // All six are unplaced; a gateway with room for three appears, and both servers pin all
    // six on it at once.
    let small = gateway(&one, "small", 3).await;
    let mut set = tokio::task::JoinSet::new();
    for (i, id) in tenants.iter().enumerate() {
        let app = if i % 2 == 0 { &one } else { &two };
        let req = app
            .client
            .post(format!("{}/tenants/{id}/placement", app.address))
            .bearer_auth(&app.operator_token)
            .json(&json!({"gatewayId": small.id}));
        set.spawn(async move {
            let r = req.send().await.unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap())
        });
    }
    let answers = set.join_all().await;
    let placed = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    let full = answers
        .iter()
        .filter(|(s, b)| *s == StatusCode::CONFLICT && b["error"]["code"] == "gateway_full")
        .count();
    assert_eq!((placed, full), (3, 3), "{answers:?}");
    assert_eq!(held(&two, &small.id).await, 3);
    crate::fleet_loads::exact(&db, "two servers placing at once never overfill a gateway");
}

// Several threads: the command runs (blocking) while the server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_sync_files_complete_a_move_without_serving_an_account_twice() {
    use crate::config_sync::{Scratch, run, succeed};
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let (t, _, b) = tenant_on_a_then_b(&app).await;
    let id = t["id"].as_str().unwrap().to_owned();
    let account = t["accountId"].as_str().unwrap().to_owned();
    let dir = Scratch::new();
    let (file_a, file_b) = (dir.path("a.json"), dir.path("b.json"));
    let sync = |name: &str, file: &std::path::Path| {
        succeed(&run(
            &db,
            &[
                "config",
                "sync",
                "--gateway",
                name,
                "--out",
                file.to_str().unwrap(),
            ],
        ));
        let doc: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        accounts(&doc).contains(&account)
    };
    // Each gateway's file holds its own tenants.
    assert!(sync("a", &file_a));
    assert!(!sync("b", &file_b));
    let r = app
        .post(
            &format!("/tenants/{id}/placement"),
            &json!({"gatewayId": b.id}),
        )
        .await;
    assert_eq!(r.body["state"], "moving", "{}", r.text);
    // b's sync first: the tenant is not b's yet, whatever a serves.
    assert!(!sync("b", &file_b));
    assert_eq!(placement(&app, &id).await["state"], "moving");
    // a's sync writes its file without the tenant, which acknowledges the move.
    assert!(!sync("a", &file_a));
    let p = placement(&app, &id).await;
    assert_eq!(p["state"], "placed");
    assert_eq!(p["gatewayId"], b.id.as_str());
    assert!(sync("b", &file_b));
    assert!(!sync("a", &file_a));
    // The built-in gateway's file holds neither (it holds no tenant now).
    assert!(!sync("default", &dir.path("default.json")));
    let audit = app.get("/audit?limit=100").await;
    assert!(audit.text.contains("tenant.moved"), "{}", audit.text);
    crate::fleet_loads::exact(
        &db,
        "config sync files complete a move without serving an account twice",
    );
}

/// A deleted tenant holds no room: its rows wait for the background purge, but it is in no
/// document, so its gateway takes another tenant at once (`default` included).
#[tokio::test]
async fn a_deleted_tenant_frees_its_room_at_once() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let delete = async |id: &str| {
        let r = app
            .request(Method::DELETE, &format!("/tenants/{id}"), None)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    };

    // A deleted tenant on `default` does not keep it from closing.
    let gone = app.create_tenant("Leaving Co").await;
    assert_eq!(held(&app, DEFAULT).await, 1);
    delete(gone["id"].as_str().unwrap()).await;
    assert_eq!(held(&app, DEFAULT).await, 0);
    close_default(&app).await;

    // `solo` takes one tenant; the next one is unplaced.
    let a = gateway(&app, "solo", 1).await;
    let t = app.create_tenant("Staying Co").await;
    let t = t["id"].as_str().unwrap();
    assert_eq!(placement(&app, t).await["gatewayId"], a.id.as_str());
    let waiting = app.create_tenant("Waiting Co").await;
    let waiting = waiting["id"].as_str().unwrap();
    assert_eq!(placement(&app, waiting).await["state"], "unplaced");

    // Deleting the tenant on `solo` frees its room at once: the waiting tenant takes it by
    // itself (see fleet_pending.rs), and `solo` holds one again, never two.
    delete(t).await;
    let p = crate::fleet_pending::placed(&app, waiting).await;
    assert_eq!(p["gatewayId"], a.id.as_str(), "{p}");
    assert_eq!(held(&app, &a.id).await, 1);
    let r = app
        .post(
            &format!("/tenants/{waiting}/placement"),
            &json!({"gatewayId": a.id}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["pinned"], true, "{}", r.text);
    assert_eq!(held(&app, &a.id).await, 1);
    crate::fleet_loads::exact(&db, "a deleted tenant frees its room at once");
}
