//! Asking for a dedicated gateway when creating a tenant (issue 25), through a real server on
//! both backends: `POST /tenants` with `dedicated: true` (operators only) or the CLI's
//! `tenants create --dedicated` places the tenant on a dedicated gateway with room as a plan in
//! `SAAS_DEDICATED_PLANS` would, even while shared gateways have more room; with no dedicated
//! room it waits `unplaced`, and is placed on the next dedicated gateway with room, never on a
//! shared one. Absent or `false`, the plan decides as before.
//!
//! Changing the wish later (`PATCH /tenants/{id}/placement {"dedicated": …}`, the CLI's
//! `tenants dedicated ID --on|--off`): a tenant whose gateway no longer suits it moves through
//! the move protocol (in neither document until its source acknowledged), with no room it is
//! `409 no_room` and nothing changes, the same value again changes and audits nothing, a waiting
//! tenant waits with its new wish; two servers asked at once never give one cell to two tenants.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use moltbot_saas_tests::{TestApp, TestDb, spawn_app, spawn_app_with, test_settings};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::fleet::{accounts, gateway_of, held, placement};
use crate::fleet_loads::acknowledge;
use crate::fleet_pending::placed;

const DEFAULT: &str = "00000000-0000-0000-0000-000000000000";

/// Creates a tenant with `body` as the operator; its id.
async fn create(app: &TestApp, body: &Value) -> String {
    app.create_tenant_with(body).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// (state, gateway, dedicated) of a tenant's placement.
async fn where_is(app: &TestApp, tenant: &str) -> (String, Option<String>, bool) {
    let p = placement(app, tenant).await;
    (
        p["state"].as_str().unwrap().to_owned(),
        p["gatewayId"].as_str().map(str::to_owned),
        p["dedicated"].as_bool().unwrap(),
    )
}

fn on(gateway: &str, dedicated: bool) -> (String, Option<String>, bool) {
    ("placed".to_owned(), Some(gateway.to_owned()), dedicated)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_created_dedicated_goes_to_a_dedicated_gateway_or_waits_for_one() {
    let db = TestDb::new();
    // No plan wants a dedicated gateway here: only the wish does.
    let app = spawn_app(&db).await;
    crate::fleet::close_default(&app).await;
    let pool = gateway_of(&app, "pool", "shared", 5).await.id;
    let cell = gateway_of(&app, "cell", "dedicated", 1).await.id;

    // Absent or `false`: the plan decides, as before (a shared gateway).
    let plain = create(&app, &json!({"name": "Plain"})).await;
    assert_eq!(where_is(&app, &plain).await, on(&pool, false));
    let unasked = create(&app, &json!({"name": "Unasked", "dedicated": false})).await;
    assert_eq!(where_is(&app, &unasked).await, on(&pool, false));

    // Asked: the dedicated gateway, though the pool has more room.
    let r = app
        .post("/tenants", &json!({"name": "Cell Co", "dedicated": true}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let cell_co = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(where_is(&app, &cell_co).await, on(&cell, true));
    let detail = app.get(&format!("/tenants/{cell_co}")).await;
    assert_eq!(
        detail.body["placement"],
        json!({"gatewayId": cell, "state": "placed", "dedicated": true}),
        "{}",
        detail.text
    );
    assert_eq!(held(&app, &cell).await, 1);
    assert_eq!(held(&app, &pool).await, 2);

    // No dedicated room left: it waits, though the pool has room.
    let waiting = create(&app, &json!({"name": "Waiting Co", "dedicated": true})).await;
    let (state, gateway, dedicated) = where_is(&app, &waiting).await;
    assert_eq!(
        (state.as_str(), gateway, dedicated),
        ("unplaced", None, true)
    );
    assert_eq!(held(&app, &pool).await, 2);

    // A dedicated gateway created: the waiting tenant goes there (placed by itself), not to
    // the pool.
    let cell2 = gateway_of(&app, "cell-2", "dedicated", 1).await.id;
    let p = placed(&app, &waiting).await;
    assert_eq!(p["gatewayId"], cell2.as_str(), "{p}");
    assert_eq!(p["dedicated"], true, "{p}");
    assert_eq!(held(&app, &pool).await, 2);
    assert_eq!(held(&app, &cell2).await, 1);
    // A later tenant without the wish still goes to the pool.
    let later = create(&app, &json!({"name": "Later"})).await;
    assert_eq!(where_is(&app, &later).await, on(&pool, false));

    // Drained, its gateway sends it to a free dedicated gateway, not to the pool with room.
    let cell3 = gateway_of(&app, "cell-3", "dedicated", 1).await.id;
    let r = app
        .request(Method::POST, &format!("/gateways/{cell}/drain"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (r.body["moving"].as_i64(), r.body["remaining"].as_i64()),
        (Some(1), Some(0))
    );
    let p = placement(&app, &cell_co).await;
    assert_eq!(
        (
            p["state"].as_str(),
            p["targetGatewayId"].as_str(),
            p["dedicated"].as_bool()
        ),
        (Some("moving"), Some(cell3.as_str()), Some(true)),
        "{p}"
    );
    assert_eq!(held(&app, &pool).await, 3);
    crate::fleet_loads::exact(&db, "a tenant created dedicated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_operator_asks_and_only_with_a_boolean() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let owner = app.create_tenant("Owner Co").await;
    let key = owner["apiKey"].as_str().unwrap();
    let body = json!({"name": "Intruder", "dedicated": true});
    app.request_as(Some(key), Method::POST, "/tenants", Some(&body))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    for bad in [json!("yes"), json!(1), json!({"on": true})] {
        app.post("/tenants", &json!({"name": "Bad", "dedicated": bad}))
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    }
    // Nobody was created but the owner's tenant.
    let list = app.get("/tenants").await;
    assert_eq!(
        list.body["tenants"].as_array().unwrap().len(),
        1,
        "{}",
        list.text
    );
    // Without the wish, a single-gateway setup keeps its tenant on `default`, as before.
    assert_eq!(
        where_is(&app, owner["id"].as_str().unwrap()).await,
        on(DEFAULT, false)
    );
}

/// `moltbot-saas tenants create ARGS` on `db`; the tenant it prints.
fn cli_create(db: &TestDb, args: &[&str]) -> Value {
    let out = crate::config_sync::command(db)
        // Else the binary makes a development secret file in the working directory.
        .env(
            "SAAS_API_KEY_SECRET",
            "cli-test-api-key-secret-0123456789abcdef",
        )
        .args(["tenants", "create"])
        .args(args)
        .output()
        .expect("run moltbot-saas");
    serde_json::from_str(&crate::config_sync::succeed(&out)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_asks_with_dedicated() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    crate::fleet::close_default(&app).await;
    let pool = gateway_of(&app, "pool", "shared", 5).await.id;
    let cell = gateway_of(&app, "cell", "dedicated", 1).await.id;
    let created = cli_create(&db, &["--name", "Cli Cell", "--dedicated"]);
    let id = created["id"].as_str().unwrap();
    assert_eq!(where_is(&app, id).await, on(&cell, true));
    let created = cli_create(&db, &["--name", "Cli Plain"]);
    let id = created["id"].as_str().unwrap();
    assert_eq!(where_is(&app, id).await, on(&pool, false));
}

/// `PATCH /tenants/{tenant}/placement {"dedicated": dedicated}` as the operator.
async fn wish(app: &TestApp, tenant: &str, dedicated: bool) -> moltbot_saas_tests::TestResponse {
    app.patch(
        &format!("/tenants/{tenant}/placement"),
        &json!({"dedicated": dedicated}),
    )
    .await
}

/// The `tenant.dedicated_changed` audit entries, newest first.
async fn wish_entries(app: &TestApp) -> Vec<Value> {
    let r = app
        .get("/audit?action=tenant.dedicated_changed&limit=100")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["events"].as_array().unwrap().clone()
}

/// Whether the document of the gateway with `token` serves the Telegram account `account`.
async fn serves(app: &TestApp, token: &str, account: &str) -> bool {
    let doc = app
        .request_as(Some(token), Method::GET, "/config", None)
        .await;
    assert_eq!(doc.status, StatusCode::OK, "{}", doc.text);
    accounts(&doc.body).iter().any(|a| a == account)
}

/// The config revision (bumped by every placement change).
async fn revision(app: &TestApp) -> String {
    let r = app.get("/config").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.headers["x-config-revision"].to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wish_moves_a_tenant_to_a_dedicated_gateway_and_back_through_the_protocol() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    crate::fleet::close_default(&app).await;
    let pool = gateway_of(&app, "pool", "shared", 5).await;
    let cell = gateway_of(&app, "cell", "dedicated", 1).await;
    let id = create(&app, &json!({"name": "Moving Co"})).await;
    crate::fleet::add_telegram(&app, &id).await;
    let account = app.get(&format!("/tenants/{id}")).await.body["accountId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(where_is(&app, &id).await, on(&pool.id, false));
    assert!(serves(&app, &pool.token, &account).await);

    // Asked: it leaves the pool's document at once, and is in the cell's only once the pool
    // acknowledged a document without it.
    let r = wish(&app, &id, true).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (
            r.body["state"].as_str(),
            r.body["gatewayId"].as_str(),
            r.body["targetGatewayId"].as_str(),
            r.body["dedicated"].as_bool(),
            r.body["pinned"].as_bool(),
        ),
        (
            Some("moving"),
            Some(pool.id.as_str()),
            Some(cell.id.as_str()),
            Some(true),
            Some(false)
        ),
        "{}",
        r.text
    );
    assert_eq!(placement(&app, &id).await, r.body);
    assert!(!serves(&app, &pool.token, &account).await);
    assert!(!serves(&app, &cell.token, &account).await);
    assert_eq!(
        (held(&app, &pool.id).await, held(&app, &cell.id).await),
        (0, 1)
    );
    // The cell's own heartbeat proves nothing about the pool.
    assert_eq!(acknowledge(&app, &cell.token).await, 0);
    assert_eq!(placement(&app, &id).await["state"], "moving");
    assert_eq!(acknowledge(&app, &pool.token).await, 1);
    assert_eq!(where_is(&app, &id).await, on(&cell.id, true));
    assert!(serves(&app, &cell.token, &account).await);
    assert!(!serves(&app, &pool.token, &account).await);
    let detail = app.get(&format!("/tenants/{id}")).await;
    assert_eq!(
        detail.body["placement"],
        json!({"gatewayId": cell.id, "state": "placed", "dedicated": true}),
        "{}",
        detail.text
    );

    // Audited once, with the wish and the placement it left.
    let entries = wish_entries(&app).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["resourceId"], id.as_str());
    assert_eq!(
        entries[0]["details"],
        json!({
            "dedicated": true,
            "state": "moving",
            "gatewayId": pool.id,
            "targetGatewayId": cell.id,
            "from": {"state": "placed", "gatewayId": pool.id, "targetGatewayId": null},
        }),
        "{entries:?}"
    );

    // The same wish again: nothing changes, nothing is audited, nothing is written.
    let before = revision(&app).await;
    let r = wish(&app, &id, true).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, placement(&app, &id).await);
    assert_eq!(where_is(&app, &id).await, on(&cell.id, true));
    assert_eq!(wish_entries(&app).await.len(), 1);
    assert_eq!(revision(&app).await, before);

    // Withdrawn (its plan asks for no dedicated gateway): back to the shared pool, the same way.
    let r = wish(&app, &id, false).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (
            r.body["state"].as_str(),
            r.body["gatewayId"].as_str(),
            r.body["targetGatewayId"].as_str(),
            r.body["dedicated"].as_bool()
        ),
        (
            Some("moving"),
            Some(cell.id.as_str()),
            Some(pool.id.as_str()),
            Some(false)
        ),
        "{}",
        r.text
    );
    assert!(!serves(&app, &cell.token, &account).await);
    assert!(!serves(&app, &pool.token, &account).await);
    assert_eq!(acknowledge(&app, &cell.token).await, 1);
    assert_eq!(where_is(&app, &id).await, on(&pool.id, false));
    assert!(serves(&app, &pool.token, &account).await);
    assert_eq!(
        (held(&app, &pool.id).await, held(&app, &cell.id).await),
        (1, 0)
    );
    let entries = wish_entries(&app).await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0]["details"]["dedicated"], false, "{entries:?}");

    // Asked again while it moves back: back to the source it has not left yet, at once.
    assert_eq!(wish(&app, &id, true).await.body["state"], "moving");
    let r = wish(&app, &id, false).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(where_is(&app, &id).await, on(&pool.id, false));
    assert!(serves(&app, &pool.token, &account).await);
    crate::fleet_loads::exact(&db, "the wish changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_room_of_the_wanted_kind_nothing_changes() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    crate::fleet::close_default(&app).await;
    let pool = gateway_of(&app, "pool", "shared", 2).await;
    let id = create(&app, &json!({"name": "Shared Co"})).await;
    assert_eq!(where_is(&app, &id).await, on(&pool.id, false));

    // No dedicated gateway at all.
    let before = revision(&app).await;
    let r = wish(&app, &id, true).await;
    r.assert_error(StatusCode::CONFLICT, "no_room");
    assert_eq!(
        r.body["error"]["details"],
        json!({"kind": "dedicated", "gateways": 0, "full": 0, "unavailable": 0}),
        "{}",
        r.text
    );
    assert_eq!(where_is(&app, &id).await, on(&pool.id, false));
    assert_eq!(revision(&app).await, before);

    // The only cell is taken.
    let cell = gateway_of(&app, "cell", "dedicated", 1).await;
    let owner = create(&app, &json!({"name": "Cell Owner", "dedicated": true})).await;
    assert_eq!(where_is(&app, &owner).await, on(&cell.id, true));
    let r = wish(&app, &id, true).await;
    r.assert_error(StatusCode::CONFLICT, "no_room");
    assert_eq!(r.body["error"]["details"]["gateways"], 1, "{}", r.text);
    assert_eq!(r.body["error"]["details"]["full"], 1, "{}", r.text);
    assert_eq!(where_is(&app, &id).await, on(&pool.id, false));

    // Withdrawn while no shared gateway has room: the cell's tenant stays, still asking.
    let r = app
        .patch(&format!("/gateways/{}", pool.id), &json!({"capacity": 1}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = wish(&app, &owner, false).await;
    r.assert_error(StatusCode::CONFLICT, "no_room");
    assert_eq!(r.body["error"]["details"]["kind"], "shared", "{}", r.text);
    assert_eq!(where_is(&app, &owner).await, on(&cell.id, true));
    assert!(wish_entries(&app).await.is_empty());

    // A tenant pinned on a shared gateway while asking for a dedicated one keeps its pin when
    // the wish is withdrawn (nothing moves); one that must move is placed by the rule, unpinned.
    let r = app
        .patch(&format!("/gateways/{}", pool.id), &json!({"capacity": 5}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .post(
            &format!("/tenants/{owner}/placement"),
            &json!({"gatewayId": pool.id}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(acknowledge(&app, &cell.token).await, 1);
    let p = placement(&app, &owner).await;
    assert_eq!(
        (p["pinned"].as_bool(), p["dedicated"].as_bool()),
        (Some(true), Some(true)),
        "{p}"
    );
    let r = wish(&app, &owner, false).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (
            r.body["state"].as_str(),
            r.body["gatewayId"].as_str(),
            r.body["pinned"].as_bool()
        ),
        (Some("placed"), Some(pool.id.as_str()), Some(true)),
        "{}",
        r.text
    );
    // Pinned on the pool, it asks again: it moves to the free cell, no longer pinned.
    let r = wish(&app, &owner, true).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (
            r.body["state"].as_str(),
            r.body["targetGatewayId"].as_str(),
            r.body["pinned"].as_bool()
        ),
        (Some("moving"), Some(cell.id.as_str()), Some(false)),
        "{}",
        r.text
    );
    assert_eq!(wish_entries(&app).await.len(), 2);
    crate::fleet_loads::exact(&db, "refused wishes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_tenant_waits_with_its_new_wish() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    crate::fleet::close_default(&app).await;
    let pool = gateway_of(&app, "pool", "shared", 5).await;
    // Asked for a dedicated gateway, none exists: it waits, though the pool has room.
    let id = create(&app, &json!({"name": "Waiting Co", "dedicated": true})).await;
    let (state, gateway, dedicated) = where_is(&app, &id).await;
    assert_eq!(
        (state.as_str(), gateway, dedicated),
        ("unplaced", None, true)
    );
    // Withdrawn: stored at once (no 409: it waits anyway), and the pool takes it.
    let r = wish(&app, &id, false).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (r.body["state"].as_str(), r.body["dedicated"].as_bool()),
        (Some("unplaced"), Some(false)),
        "{}",
        r.text
    );
    let p = placed(&app, &id).await;
    assert_eq!(p["gatewayId"], pool.id.as_str(), "{p}");
    assert_eq!(p["dedicated"], false, "{p}");
    crate::fleet_loads::exact(&db, "a waiting tenant's wish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_gateway_setup_has_no_dedicated_gateway_and_bad_requests_are_refused() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let owner = app.create_tenant("Only Co").await;
    let id = owner["id"].as_str().unwrap();
    let before = revision(&app).await;
    let r = wish(&app, id, true).await;
    r.assert_error(StatusCode::CONFLICT, "no_room");
    assert_eq!(r.body["error"]["details"]["gateways"], 0, "{}", r.text);
    let r = wish(&app, id, false).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"gatewayId": DEFAULT, "state": "placed", "targetGatewayId": null,
               "pinned": false, "movingSince": null, "dedicated": false})
    );
    // Nothing written: no fleet row, no revision, no audit entry.
    assert_eq!(revision(&app).await, before);
    assert!(wish_entries(&app).await.is_empty());
    assert_eq!(
        crate::fleet_loads::exact(&db, "a single gateway's wishes"),
        vec![(tenant_core::GatewayId::DEFAULT, 1)]
    );

    // Bad input.
    let path = format!("/tenants/{id}/placement");
    for bad in [
        json!({"dedicated": "yes"}),
        json!({"dedicated": 1}),
        json!({"dedicated": null}),
        json!({}),
        json!({"dedicated": true, "gatewayId": DEFAULT}),
    ] {
        let r = app.patch(&path, &bad).await;
        r.assert_error(StatusCode::BAD_REQUEST, "invalid_json");
        assert!(r.body["error"]["message"].is_string(), "{}", r.text);
    }
    app.patch("/tenants/not-a-uuid/placement", &json!({"dedicated": true}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_path");
    app.patch(
        "/tenants/7a1c1f5e-0000-4000-8000-000000000000/placement",
        &json!({"dedicated": false}),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");
    // Only operators.
    let key = owner["apiKey"].as_str().unwrap();
    app.request_as(
        Some(key),
        Method::PATCH,
        &path,
        Some(&json!({"dedicated": true})),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(where_is(&app, id).await, on(DEFAULT, false));
    assert_eq!(revision(&app).await, before);
}

/// `moltbot-saas tenants dedicated ARGS` on `db`.
fn cli_dedicated(db: &TestDb, args: &[&str]) -> std::process::Output {
    crate::config_sync::command(db)
        .env(
            "SAAS_API_KEY_SECRET",
            "cli-test-api-key-secret-0123456789abcdef",
        )
        .args(["tenants", "dedicated"])
        .args(args)
        .output()
        .expect("run moltbot-saas")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_changes_the_wish() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    crate::fleet::close_default(&app).await;
    let pool = gateway_of(&app, "pool", "shared", 5).await;
    let cell = gateway_of(&app, "cell", "dedicated", 1).await;
    let id = create(&app, &json!({"name": "Cli Co"})).await;
    // Exactly one of --on and --off.
    for args in [vec![id.as_str()], vec![id.as_str(), "--on", "--off"]] {
        let out = cli_dedicated(&db, &args);
        assert!(!out.status.success(), "{args:?}");
    }
    assert_eq!(where_is(&app, &id).await, on(&pool.id, false));

    let out = cli_dedicated(&db, &[&id, "--on"]);
    let stdout = crate::config_sync::succeed(&out);
    let printed: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {stdout:?}, stderr {:?}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(printed, placement(&app, &id).await);
    assert_eq!(
        (
            printed["state"].as_str(),
            printed["targetGatewayId"].as_str(),
            printed["dedicated"].as_bool()
        ),
        (Some("moving"), Some(cell.id.as_str()), Some(true)),
        "{printed}"
    );
    let entries = wish_entries(&app).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["actor"]["type"], "cli", "{entries:?}");
    assert_eq!(acknowledge(&app, &pool.token).await, 1);
    assert_eq!(where_is(&app, &id).await, on(&cell.id, true));
    // The same again: the same placement, nothing audited.
    let out = cli_dedicated(&db, &[&id, "--on"]);
    crate::config_sync::succeed(&out);
    assert_eq!(wish_entries(&app).await.len(), 1);
    // No cell left for another: an error saying why, and nothing changed.
    let other = create(&app, &json!({"name": "Cli Other"})).await;
    let out = cli_dedicated(&db, &[&other, "--on"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no dedicated gateway has room"), "{stderr}");
    assert_eq!(where_is(&app, &other).await, on(&pool.id, false));
    assert_eq!(wish_entries(&app).await.len(), 1);
    crate::fleet_loads::exact(&db, "the CLI's wish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawing_the_wish_of_a_dedicated_plan_moves_nothing() {
    let db = TestDb::new();
    let mut settings = test_settings(&db);
    settings.fleet.dedicated_plans = vec![tenant_core::Plan::Enterprise];
    let app = spawn_app_with(settings).await;
    crate::fleet::close_default(&app).await;
    let pool = gateway_of(&app, "pool", "shared", 5).await;
    let cell = gateway_of(&app, "cell", "dedicated", 1).await;
    let id = create(
        &app,
        &json!({"name": "Big Co", "plan": "enterprise", "dedicated": true}),
    )
    .await;
    assert_eq!(where_is(&app, &id).await, on(&cell.id, true));
    // Its plan still wants a dedicated gateway: the wish goes, the tenant stays.
    let r = wish(&app, &id, false).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(where_is(&app, &id).await, on(&cell.id, false));
    // And back: already where it should be.
    let r = wish(&app, &id, true).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(where_is(&app, &id).await, on(&cell.id, true));
    let entries = wish_entries(&app).await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(entries.iter().all(
        |e| e["details"]["state"] == "placed" && e["details"]["gatewayId"] == cell.id.as_str()
    ));
    assert_eq!(
        (held(&app, &pool.id).await, held(&app, &cell.id).await),
        (0, 1)
    );
    crate::fleet_loads::exact(&db, "a dedicated plan's wish");
}

// Several threads, so that the two servers' transactions really overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_asking_at_once_never_share_a_cell() {
    let db = TestDb::new();
    let one = spawn_app(&db).await;
    let mut settings = test_settings(&db);
    settings.admin_token = Some(tenant_core::Secret::new(one.operator_token.clone()));
    let two = spawn_app_with(settings).await;
    crate::fleet::close_default(&one).await;
    let pool = gateway_of(&one, "pool", "shared", 10).await;
    let cells = [
        gateway_of(&one, "cell-1", "dedicated", 1).await.id,
        gateway_of(&one, "cell-2", "dedicated", 1).await.id,
    ];
    let mut tenants = Vec::new();
    for i in 0..6 {
        tenants.push(create(&one, &json!({"name": format!("Racer {i}")})).await);
    }
    // Six tenants ask for the two cells at once, through both servers.
    let mut set = tokio::task::JoinSet::new();
    for (i, id) in tenants.iter().enumerate() {
        let app = if i % 2 == 0 { &one } else { &two };
        let req = app
            .client
            .patch(format!("{}/tenants/{id}/placement", app.address))
            .bearer_auth(&app.operator_token)
            .json(&json!({"dedicated": true}));
        let id = id.clone();
        set.spawn(async move {
            let r = req.send().await.unwrap();
            let status = r.status();
            (id, status, r.json::<Value>().await.unwrap())
        });
    }
    let answers = set.join_all().await;
    let moving: Vec<&(String, StatusCode, Value)> = answers
        .iter()
        .filter(|(_, s, _)| *s == StatusCode::OK)
        .collect();
    assert_eq!(moving.len(), 2, "one tenant per cell: {answers:?}");
    for (_, status, body) in &answers {
        if *status != StatusCode::OK {
            assert_eq!(*status, StatusCode::CONFLICT, "{body}");
            assert_eq!(body["error"]["code"], "no_room", "{body}");
        }
    }
    let mut targets: Vec<&str> = moving
        .iter()
        .map(|(_, _, b)| b["targetGatewayId"].as_str().unwrap())
        .collect();
    targets.sort_unstable();
    let mut expected: Vec<&str> = cells.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(targets, expected, "{answers:?}");
    // The refused kept everything: on the pool, no wish.
    for (id, status, _) in &answers {
        if *status != StatusCode::OK {
            assert_eq!(where_is(&one, id).await, on(&pool.id, false));
        }
    }
    assert_eq!(wish_entries(&one).await.len(), 2);
    assert_eq!(held(&one, &pool.id).await, 4);
    crate::fleet_loads::exact(&db, "two servers asking at once");
    // The pool acknowledges: each goes to its own cell.
    assert_eq!(acknowledge(&one, &pool.token).await, 2);
    for (id, _, body) in &moving {
        let cell = body["targetGatewayId"].as_str().unwrap();
        assert_eq!(where_is(&two, id).await, on(cell, true));
    }
}
