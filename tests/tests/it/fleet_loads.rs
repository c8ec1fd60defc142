//! What each gateway holds, as stored (`gateway_loads`, kept by the database's triggers so that
//! placing a tenant reads a few rows instead of counting every tenant): after creates, deletes,
//! moves (started and completed), drains, unplaced tenants, a purge, concurrent creates on two
//! servers, and opposite moves beside transactions that write two gateways' tenants in opposite
//! orders, it always equals a recount from the rows, and no transaction fails (no deadlock on
//! PostgreSQL). On both backends.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use diesel::prelude::*;
use moltbot_saas_tests::{TestApp, TestDb, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenant_core::GatewayId;
use tenant_store::gateways::{held_counts, recount_held};

const DEFAULT: &str = "00000000-0000-0000-0000-000000000000";

/// The stored loads, checked against a recount; returns them.
fn loads(db: &TestDb, when: &str) -> Vec<(GatewayId, i64)> {
    let mut conn = db.connect();
    let stored = held_counts(&mut conn).unwrap();
    assert_eq!(stored, recount_held(&mut conn).unwrap(), "after {when}");
    stored
}

fn held_in(loads: &[(GatewayId, i64)], id: &str) -> i64 {
    let id: GatewayId = id.parse().unwrap();
    loads.iter().find(|(g, _)| *g == id).map_or(0, |(_, n)| *n)
}

async fn gateway(app: &TestApp, name: &str, capacity: i64) -> String {
    gateway_with_token(app, name, capacity).await.0
}

/// A shared gateway: its id and its token.
async fn gateway_with_token(app: &TestApp, name: &str, capacity: i64) -> (String, String) {
    let r = app
        .post(
            "/gateways",
            &json!({"name": name, "kind": "shared", "capacity": capacity}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    (
        r.body["id"].as_str().unwrap().to_owned(),
        r.body["token"].as_str().unwrap().to_owned(),
    )
}

async fn tenant(app: &TestApp, name: &str) -> String {
    app.create_tenant(name).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn delete(app: &TestApp, id: &str) {
    let r = app
        .request(Method::DELETE, &format!("/tenants/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
}

/// The gateway `tenant` is placed on (or moving from).
async fn placed_on(app: &TestApp, tenant: &str) -> String {
    app.get(&format!("/tenants/{tenant}/placement")).await.body["gatewayId"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The gateway fetches its document and acknowledges it; returns how many moves away from it
/// that completed.
async fn acknowledge(app: &TestApp, token: &str) -> i64 {
    let doc = app
        .request_as(Some(token), Method::GET, "/config", None)
        .await;
    assert_eq!(doc.status, StatusCode::OK, "{}", doc.text);
    let etag = doc.headers["etag"].to_str().unwrap().to_owned();
    let revision: i64 = doc.headers["x-config-revision"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let r = app
        .request_as(
            Some(token),
            Method::POST,
            "/gateway/heartbeat",
            Some(&json!({"etag": etag, "revision": revision})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["released"].as_i64().unwrap()
}

async fn place(app: &TestApp, tenant: &str, gateway: &str) -> Value {
    let r = app
        .post(
            &format!("/tenants/{tenant}/placement"),
            &json!({"gatewayId": gateway}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}

#[tokio::test]
async fn stored_loads_match_a_recount_through_every_placement_change() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;

    // A single-gateway setup: every tenant on `default`, no placement row.
    let first = tenant(&app, "First").await;
    let second = tenant(&app, "Second").await;
    assert_eq!(held_in(&loads(&db, "two creates"), DEFAULT), 2);

    // A pool appears and `default` closes: new tenants go to the pool, then none has room.
    let r = app
        .patch(&format!("/gateways/{DEFAULT}"), &json!({"capacity": 2}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let a = gateway(&app, "a", 2).await;
    let b = gateway(&app, "b", 3).await;
    let mut on_pool = Vec::new();
    for i in 0..5 {
        on_pool.push(tenant(&app, &format!("Pool {i}")).await);
    }
    let now = loads(&db, "placing five");
    assert_eq!(
        (held_in(&now, DEFAULT), held_in(&now, &a), held_in(&now, &b)),
        (2, 2, 3)
    );
    let unplaced = tenant(&app, "No Room").await;
    assert_eq!(
        app.get(&format!("/tenants/{unplaced}/placement"))
            .await
            .body["state"],
        "unplaced"
    );
    let now = loads(&db, "an unplaced tenant");
    assert_eq!(now.iter().map(|(_, n)| n).sum::<i64>(), 7, "{now:?}");

    // Deleting frees room at once; the unplaced tenant is pinned there.
    let holder = app
        .get(&format!("/tenants/{}/placement", on_pool[0]))
        .await
        .body["gatewayId"]
        .as_str()
        .unwrap()
        .to_owned();
    delete(&app, &on_pool[0]).await;
    let freed = loads(&db, "a delete");
    assert_eq!(held_in(&freed, &holder), held_in(&now, &holder) - 1);
    place(&app, &unplaced, &holder).await;
    assert_eq!(
        held_in(&loads(&db, "pinning the unplaced"), &holder),
        held_in(&now, &holder)
    );

    // A move counts on its target from its start.
    delete(&app, &first).await;
    let r = app
        .patch(&format!("/gateways/{a}"), &json!({"capacity": 3}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let moving = place(&app, &second, &a).await;
    assert_eq!(moving["state"], "moving", "{moving}");
    let now = loads(&db, "a move started");
    assert_eq!(held_in(&now, DEFAULT), 0);
    assert_eq!(held_in(&now, &a), 3);

    // The source acknowledges a document without the tenant: the move completes.
    let default_token = app.gateway_token.clone();
    let doc = app
        .request_as(Some(&default_token), Method::GET, "/config", None)
        .await;
    assert_eq!(doc.status, StatusCode::OK, "{}", doc.text);
    let etag = doc.headers["etag"].to_str().unwrap().to_owned();
    let revision: i64 = doc.headers["x-config-revision"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let r = app
        .request_as(
            Some(&default_token),
            Method::POST,
            "/gateway/heartbeat",
            Some(&json!({"etag": etag, "revision": revision})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["released"], 1, "{}", r.text);
    let now = loads(&db, "a move completed");
    assert_eq!(held_in(&now, &a), 3);

    // A drain moves what it can (counted on the targets), the rest stays.
    let r = app
        .request(Method::POST, &format!("/gateways/{b}/drain"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let now = loads(&db, "a drain");
    assert_eq!(
        held_in(&now, &b),
        r.body["remaining"].as_i64().unwrap(),
        "{now:?}"
    );

    // The purge removes deleted tenants' rows (they count nowhere already); removing a live
    // tenant's row outright (an operator's manual fix) frees its room too.
    let mut conn = db.connect();
    let purged = diesel::delete(
        tenant_store::schema::tenants::table
            .filter(tenant_store::schema::tenants::deleted_at.is_not_null()),
    )
    .execute(&mut conn)
    .unwrap();
    assert_eq!(purged, 2);
    let total = |loads: &[(GatewayId, i64)]| loads.iter().map(|(_, n)| n).sum::<i64>();
    let before = loads(&db, "the purge");
    assert_eq!(total(&before), 6, "{before:?}");
    let n = diesel::delete(tenant_store::schema::tenants::table.find(&on_pool[1]))
        .execute(&mut conn)
        .unwrap();
    assert_eq!(n, 1);
    let after = loads(&db, "removing a live tenant's row");
    assert_eq!(total(&after), 5, "{after:?}");
    // A placement row removed by hand puts its tenant back on `default`.
    let n = diesel::delete(tenant_store::schema::tenant_placements::table.find(&unplaced))
        .execute(&mut conn)
        .unwrap();
    assert_eq!(n, 1);
    let now = loads(&db, "removing a placement row");
    assert_eq!(total(&now), 5, "{now:?}");
    assert!(held_in(&now, DEFAULT) >= 1, "{now:?}");

    // The gateway listing shows the stored counts.
    let list = app.get("/gateways").await;
    for g in list.body["gateways"].as_array().unwrap() {
        let id = g["id"].as_str().unwrap();
        assert_eq!(g["tenants"].as_i64().unwrap(), held_in(&now, id), "{g}");
    }
}

// Several threads, so that the two servers' transactions really overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_deletes_and_moves_keep_the_loads_exact() {
    let db = TestDb::new();
    let one = spawn_app(&db).await;
    let mut settings = moltbot_saas_tests::test_settings(&db);
    settings.admin_token = Some(tenant_core::Secret::new(one.operator_token.clone()));
    let two = moltbot_saas_tests::spawn_app_with(settings).await;
    one.patch(&format!("/gateways/{DEFAULT}"), &json!({"capacity": 0}))
        .await;
    let a = gateway(&one, "a", 40).await;
    let b = gateway(&one, "b", 40).await;
    let mut existing = Vec::new();
    for i in 0..10 {
        existing.push(tenant(&one, &format!("Old {i}")).await);
    }
    loads(&db, "ten creates");

    // At once, on two servers: 24 creates, 5 deletes and 5 moves to `b`.
    let mut set = tokio::task::JoinSet::new();
    let send = |app: &TestApp, method: Method, path: String, body: Value| {
        let req = app
            .client
            .request(method, format!("{}{path}", app.address))
            .bearer_auth(&app.operator_token)
            .json(&body);
        async move { req.send().await.unwrap().status() }
    };
    for i in 0..24 {
        let app = if i % 2 == 0 { &one } else { &two };
        set.spawn(send(
            app,
            Method::POST,
            "/tenants".to_owned(),
            json!({"name": format!("New {i}")}),
        ));
    }
    for (i, id) in existing.iter().enumerate() {
        let app = if i % 2 == 0 { &two } else { &one };
        if i < 5 {
            set.spawn(send(
                app,
                Method::DELETE,
                format!("/tenants/{id}"),
                json!({}),
            ));
        } else {
            set.spawn(send(
                app,
                Method::POST,
                format!("/tenants/{id}/placement"),
                json!({"gatewayId": b}),
            ));
        }
    }
    let statuses = set.join_all().await;
    assert!(
        statuses.iter().all(|s| s.is_success()),
        "every request went through: {statuses:?}"
    );
    let now = loads(&db, "concurrent creates, deletes and moves");
    assert_eq!(held_in(&now, &a) + held_in(&now, &b), 29, "{now:?}");
    assert_eq!(held_in(&now, DEFAULT), 0);
    assert!(held_in(&now, &a) <= 40 && held_in(&now, &b) <= 40);
}

/// One transaction that touches the tenants `first` and then `second` (their channels, and the
/// second's row): on PostgreSQL each statement's trigger writes the counts of that tenant's
/// gateways, so two of these with the tenants swapped touch two gateways' rows in opposite
/// orders.
fn write_across(conn: &mut tenant_store::AnyConnection, first: &str, second: &str) {
    use tenant_store::schema::{channels, tenants};
    let now = tenant_core::now().naive_utc();
    tenant_store::write_transaction(conn, |c| {
        diesel::update(channels::table.filter(channels::tenant_id.eq(first)))
            .set(channels::updated_at.eq(now))
            .execute(c)?;
        diesel::update(tenants::table.find(second))
            .set(tenants::updated_at.eq(now))
            .execute(c)?;
        diesel::update(channels::table.filter(channels::tenant_id.eq(second)))
            .set(channels::updated_at.eq(now))
            .execute(c)?;
        Ok::<_, diesel::result::Error>(())
    })
    .unwrap_or_else(|e| panic!("a write across {first} and {second} failed: {e}"));
}

// Several threads, so that the transactions really overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opposite_moves_beside_crossed_writes_neither_fail_nor_drift() {
    let db = TestDb::new();
    let one = spawn_app(&db).await;
    let mut settings = moltbot_saas_tests::test_settings(&db);
    settings.admin_token = Some(tenant_core::Secret::new(one.operator_token.clone()));
    let two = moltbot_saas_tests::spawn_app_with(settings).await;
    one.patch(&format!("/gateways/{DEFAULT}"), &json!({"capacity": 0}))
        .await;
    let (a, a_token) = gateway_with_token(&one, "a", 100).await;
    let (b, b_token) = gateway_with_token(&one, "b", 100).await;
    let mut tenants = Vec::new();
    for i in 0..12 {
        let id = tenant(&one, &format!("Mover {i}")).await;
        let r = one
            .post(
                &format!("/tenants/{id}/channels"),
                &json!({"channel": "discord", "credentials": {
                    "token": format!("FAKE.discord.token.loads{i}"),
                    "applicationId": format!("9000002{i:02}"),
                }}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        tenants.push(id);
    }
    let start = loads(&db, "twelve creates");
    assert_eq!(
        (held_in(&start, &a), held_in(&start, &b)),
        (6, 6),
        "{start:?}"
    );

    for round in 0..3 {
        let mut on_a = Vec::new();
        let mut on_b = Vec::new();
        for id in &tenants {
            if placed_on(&one, id).await == a {
                on_a.push(id.clone());
            } else {
                on_b.push(id.clone());
            }
        }
        // At once: every tenant of `a` moves to `b` and every tenant of `b` to `a`, half through
        // each server, beside transactions that write a tenant of `a` then one of `b`, and the
        // other way round.
        let mut moves = tokio::task::JoinSet::new();
        for (i, (id, to)) in on_a
            .iter()
            .map(|id| (id, &b))
            .chain(on_b.iter().map(|id| (id, &a)))
            .enumerate()
        {
            let app = if i % 2 == 0 { &one } else { &two };
            let req = app
                .client
                .post(format!("{}/tenants/{id}/placement", app.address))
                .bearer_auth(&app.operator_token)
                .json(&json!({"gatewayId": to}));
            moves.spawn(async move { req.send().await.unwrap().status() });
        }
        // Each writer its own tenants (two transactions on the same rows in opposite orders would
        // deadlock without any trigger): the first half of the pairs a then b, the second b then a.
        let pairs: Vec<(String, String)> = on_a.iter().cloned().zip(on_b.iter().cloned()).collect();
        let half = pairs.len() / 2;
        let mut writers = Vec::new();
        for (forward, mine) in [
            (true, pairs[..half].to_vec()),
            (false, pairs[half..].to_vec()),
        ] {
            let mut conn = db.connect();
            writers.push(tokio::task::spawn_blocking(move || {
                for _ in 0..5 {
                    for (x, y) in &mine {
                        if forward {
                            write_across(&mut conn, x, y);
                        } else {
                            write_across(&mut conn, y, x);
                        }
                    }
                }
            }));
        }
        let statuses = moves.join_all().await;
        assert!(
            statuses.iter().all(|s| *s == StatusCode::OK),
            "round {round}: every move went through: {statuses:?}"
        );
        for w in writers {
            w.await.unwrap();
        }
        let moving = loads(&db, &format!("round {round}'s moves"));
        assert_eq!(
            (held_in(&moving, &a), held_in(&moving, &b)),
            (on_b.len() as i64, on_a.len() as i64),
            "round {round}: each move counts on its target: {moving:?}"
        );
        // Both sources acknowledge a document without their leavers: every move completes.
        let released = acknowledge(&one, &a_token).await + acknowledge(&one, &b_token).await;
        assert_eq!(released, tenants.len() as i64, "round {round}");
        let moved = loads(&db, &format!("round {round}'s moves completed"));
        assert_eq!(moved, moving, "round {round}");
        assert_eq!(held_in(&moved, DEFAULT), 0);
    }
}

/// The migration fills the counts in from the rows already there (a database of the previous
/// release, with tenants placed, moving, unplaced and deleted).
#[tokio::test]
async fn the_migration_backfills_the_loads_from_the_rows() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let on_default = tenant(&app, "Stays").await;
    let r = app
        .patch(&format!("/gateways/{DEFAULT}"), &json!({"capacity": 1}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let a = gateway(&app, "a", 2).await;
    let b = gateway(&app, "b", 2).await;
    let mut on_pool = Vec::new();
    for i in 0..4 {
        on_pool.push(tenant(&app, &format!("Pool {i}")).await);
    }
    let unplaced = tenant(&app, "No Room").await;
    assert_eq!(
        app.get(&format!("/tenants/{unplaced}/placement"))
            .await
            .body["state"],
        "unplaced"
    );
    delete(&app, &on_pool[0]).await;
    place(&app, &on_default, &a).await;
    let before = loads(&db, "the setup");

    // Back to the schema before the counts (later migrations first), then forward again.
    let mut conn = db.connect();
    let mut reverted = Vec::new();
    loop {
        let version = tenant_store::migrations::revert_last(&mut conn).unwrap();
        let done = version.contains("20261206090000");
        reverted.push(version);
        if done {
            break;
        }
    }
    assert!(
        tenant_store::gateways::held_counts(&mut conn).is_err(),
        "no stored counts after reverting {reverted:?}"
    );
    let applied = tenant_store::migrations::run_pending(&mut conn).unwrap();
    assert_eq!(applied.len(), reverted.len());
    let after = loads(&db, "the backfill");
    assert_eq!(after, before);
    assert_eq!(
        (
            held_in(&after, DEFAULT),
            held_in(&after, &a),
            held_in(&after, &b)
        ),
        (0, 2, 2),
        "{after:?}"
    );
}
