//! What each gateway holds, as stored (`gateways.held`, kept by the application where a
//! placement row changes, so that placing a tenant reads a few rows instead of counting every
//! tenant): after creates, deletes and the purge, moves started, reversed and completed in both
//! directions, drains, unplaced tenants placed later, and creates, deletes and moves on two
//! servers at once, it always equals a recount from the rows, and no placement row outlives its
//! tenant. Many placements written at once (a drain, a failover) move each count once by the sum
//! of their changes. The migration fills it in from the rows of a database of the previous
//! release. On both backends. (The other fleet tests check the same after failover and pending
//! placement.)

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use moltbot_saas_tests::{TestApp, TestDb, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenant_core::GatewayId;
use tenant_store::gateways::{held_counts, recount_held, rows_of_deleted};

use crate::fleet::{Gw, gateway_of};

const DEFAULT: &str = "00000000-0000-0000-0000-000000000000";

/// The stored counts, checked against a recount from the rows (and no placement row of a
/// deleted tenant); returns them.
pub(crate) fn exact(db: &TestDb, when: &str) -> Vec<(GatewayId, i64)> {
    let mut conn = db.connect();
    let stored = held_counts(&mut conn).unwrap();
    assert_eq!(
        stored,
        recount_held(&mut conn).unwrap(),
        "stored counts against a recount, after {when}"
    );
    assert_eq!(
        rows_of_deleted(&mut conn).unwrap(),
        0,
        "placement rows of deleted tenants, after {when}"
    );
    stored
}

fn held_in(loads: &[(GatewayId, i64)], id: &str) -> i64 {
    let id: GatewayId = id.parse().unwrap();
    loads.iter().find(|(g, _)| *g == id).map_or(0, |(_, n)| *n)
}

fn total(loads: &[(GatewayId, i64)]) -> i64 {
    loads.iter().map(|(_, n)| n).sum()
}

async fn gateway(app: &TestApp, name: &str, capacity: i64) -> Gw {
    gateway_of(app, name, "shared", capacity).await
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

async fn patch(app: &TestApp, gateway: &str, body: Value) {
    let r = app.patch(&format!("/gateways/{gateway}"), &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

async fn placement(app: &TestApp, tenant: &str) -> Value {
    let r = app.get(&format!("/tenants/{tenant}/placement")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
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

/// The gateway with `token` fetches its document and acknowledges it; returns how many moves
/// away from it completed.
pub(crate) async fn acknowledge(app: &TestApp, token: &str) -> i64 {
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

/// Purges every deleted tenant's rows, as the background purge does.
fn purge(db: &TestDb) -> usize {
    use tenant_store::purge::{TenantStep, deleted_tenants, tenant_step};
    let mut conn = db.connect();
    let gone = deleted_tenants(&mut conn, 100).unwrap();
    for id in &gone {
        while tenant_step(&mut conn, id, 1000).unwrap() != TenantStep::Done {}
    }
    gone.len()
}

#[tokio::test]
async fn stored_counts_match_a_recount_through_every_placement_change() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;

    // A single-gateway setup: every tenant on `default`, no placement row, nothing stored.
    let first = tenant(&app, "First").await;
    let second = tenant(&app, "Second").await;
    assert_eq!(held_in(&exact(&db, "two creates"), DEFAULT), 2);

    // `default` keeps a capacity of 3 (so placement counts its tenants without a row): new
    // tenants fill it, then the pool, then none has room.
    patch(&app, DEFAULT, json!({"capacity": 3})).await;
    let a = gateway(&app, "a", 2).await;
    let b = gateway(&app, "b", 3).await;
    let mut pool = Vec::new();
    for i in 0..6 {
        pool.push(tenant(&app, &format!("Pool {i}")).await);
    }
    let now = exact(&db, "placing six");
    assert_eq!(
        (
            held_in(&now, DEFAULT),
            held_in(&now, &a.id),
            held_in(&now, &b.id)
        ),
        (3, 2, 3),
        "{now:?}"
    );
    let unplaced = tenant(&app, "No Room").await;
    assert_eq!(placement(&app, &unplaced).await["state"], "unplaced");
    assert_eq!(total(&exact(&db, "an unplaced tenant")), 8);

    // A deletion frees room on its gateway at once, which the waiting tenant takes by itself
    // (fleet_pending.rs); an operator then pins it there (no change of count).
    let holder = placement(&app, &pool[5]).await["gatewayId"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = held_in(&exact(&db, "before a delete"), &holder);
    delete(&app, &pool[5]).await;
    let p = crate::fleet_pending::placed(&app, &unplaced).await;
    assert_eq!(p["gatewayId"], holder.as_str(), "{p}");
    assert_eq!(
        held_in(&exact(&db, "a delete, room taken"), &holder),
        before
    );
    assert_eq!(place(&app, &unplaced, &holder).await["pinned"], true);
    assert_eq!(held_in(&exact(&db, "pinning it"), &holder), before);

    // A tenant without a row moves to `a`: it counts on `a` from the start of the move.
    delete(&app, &first).await;
    patch(&app, &a.id, json!({"capacity": 4})).await;
    let moving = place(&app, &second, &a.id).await;
    assert_eq!(moving["state"], "moving", "{moving}");
    let now = exact(&db, "a move from default started");
    assert_eq!(held_in(&now, &a.id), 3);
    assert_eq!(held_in(&now, DEFAULT), 1, "{now:?}");
    // `default` acknowledges a document without it: the move completes, the counts stay.
    assert_eq!(acknowledge(&app, &app.gateway_token.clone()).await, 1);
    assert_eq!(exact(&db, "a move from default completed"), now);

    // The other way, from `a` back to `default`: moving, reversed (back to its source), moving
    // again, completed by `a`'s acknowledgement.
    place(&app, &second, DEFAULT).await;
    let now = exact(&db, "a move to default started");
    assert_eq!(
        (held_in(&now, &a.id), held_in(&now, DEFAULT)),
        (2, 2),
        "{now:?}"
    );
    let back = place(&app, &second, &a.id).await;
    assert_eq!(back["state"], "placed", "{back}");
    let now = exact(&db, "a move reversed");
    assert_eq!(
        (held_in(&now, &a.id), held_in(&now, DEFAULT)),
        (3, 1),
        "{now:?}"
    );
    place(&app, &second, DEFAULT).await;
    assert_eq!(acknowledge(&app, &a.token).await, 1);
    let p = placement(&app, &second).await;
    assert_eq!(
        (p["state"].as_str(), p["gatewayId"].as_str()),
        (Some("placed"), Some(DEFAULT))
    );
    let now = exact(&db, "a move to default completed");
    assert_eq!(
        (held_in(&now, &a.id), held_in(&now, DEFAULT)),
        (2, 2),
        "{now:?}"
    );

    // A drain moves what it can (counted on the targets from the start), the rest stays.
    let r = app
        .request(Method::POST, &format!("/gateways/{}/drain", b.id), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let now = exact(&db, "a drain");
    assert_eq!(
        held_in(&now, &b.id),
        r.body["remaining"].as_i64().unwrap(),
        "{now:?}"
    );
    assert!(r.body["moving"].as_i64().unwrap() > 0, "{}", r.text);
    assert_eq!(acknowledge(&app, &b.token).await, r.body["moving"]);
    assert_eq!(exact(&db, "the drain's moves completed"), now);

    // Deleting a tenant that is moving frees its room on the target; the purge removes the
    // deleted tenants' rows, which count nowhere already.
    let mut mover = None;
    for id in &pool[..5] {
        if placement(&app, id).await["gatewayId"] != a.id.as_str() {
            mover = Some(id.clone());
        }
    }
    let mover = mover.expect("a pool tenant off `a`");
    patch(&app, &a.id, json!({"capacity": 10})).await;
    assert_eq!(place(&app, &mover, &a.id).await["state"], "moving");
    let moving = exact(&db, "one more move");
    delete(&app, &mover).await;
    let after = exact(&db, "deleting a moving tenant");
    assert_eq!(held_in(&after, &a.id), held_in(&moving, &a.id) - 1);
    assert_eq!(purge(&db), 3);
    assert_eq!(exact(&db, "the purge"), after);

    // The listing shows the same counts.
    let list = app.get("/gateways").await;
    for g in list.body["gateways"].as_array().unwrap() {
        let id = g["id"].as_str().unwrap();
        assert_eq!(g["tenants"].as_i64().unwrap(), held_in(&after, id), "{g}");
    }
}

// Several threads, so that the two servers' transactions really overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_creating_deleting_and_moving_at_once_keep_the_counts_exact() {
    let db = TestDb::new();
    let one = spawn_app(&db).await;
    let mut settings = moltbot_saas_tests::test_settings(&db);
    settings.admin_token = Some(tenant_core::Secret::new(one.operator_token.clone()));
    let two = moltbot_saas_tests::spawn_app_with(settings).await;
    patch(&one, DEFAULT, json!({"capacity": 0})).await;
    let a = gateway(&one, "a", 40).await;
    let b = gateway(&one, "b", 40).await;
    let mut existing = Vec::new();
    for i in 0..12 {
        existing.push(tenant(&one, &format!("Old {i}")).await);
    }
    exact(&db, "twelve creates");

    // At once, on two servers: 20 creates, 4 deletes, and 8 moves, each tenant to the gateway
    // it is not on (both directions).
    let mut on = Vec::new();
    for id in &existing {
        on.push(
            placement(&one, id).await["gatewayId"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mut set = tokio::task::JoinSet::new();
    let send = |app: &TestApp, method: Method, path: String, body: Value| {
        let req = app
            .client
            .request(method, format!("{}{path}", app.address))
            .bearer_auth(&app.operator_token)
            .json(&body);
        async move { req.send().await.unwrap().status() }
    };
    for i in 0..20 {
        let app = if i % 2 == 0 { &one } else { &two };
        set.spawn(send(
            app,
            Method::POST,
            "/tenants".to_owned(),
            json!({"name": format!("New {i}")}),
        ));
    }
    for (i, (id, from)) in existing.iter().zip(&on).enumerate() {
        let app = if i % 2 == 0 { &two } else { &one };
        if i < 4 {
            set.spawn(send(
                app,
                Method::DELETE,
                format!("/tenants/{id}"),
                json!({}),
            ));
        } else {
            let to = if *from == a.id { &b.id } else { &a.id };
            set.spawn(send(
                app,
                Method::POST,
                format!("/tenants/{id}/placement"),
                json!({"gatewayId": to}),
            ));
        }
    }
    let statuses = set.join_all().await;
    assert!(
        statuses.iter().all(|s| s.is_success()),
        "every request went through: {statuses:?}"
    );
    let now = exact(&db, "concurrent creates, deletes and moves");
    assert_eq!(held_in(&now, &a.id) + held_in(&now, &b.id), 28, "{now:?}");
    assert_eq!(held_in(&now, DEFAULT), 0);

    // Both sources acknowledge (one after the other: a document that changes between its fetch
    // and its heartbeat acknowledges nothing): every move completes once.
    let x = acknowledge(&one, &a.token).await;
    let y = acknowledge(&one, &b.token).await;
    assert_eq!(x + y, 8);
    assert_eq!(exact(&db, "the moves completed"), now);
}

/// The migration fills the counts in from the rows already there (a database of the previous
/// release, with tenants placed, moving, unplaced, without a row, and deleted with their row
/// left behind, as the previous release did).
#[tokio::test]
async fn the_migration_backfills_the_counts_from_the_rows() {
    use diesel::prelude::*;
    use tenant_store::schema::{tenant_placements, tenants};
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let stays = tenant(&app, "Stays").await;
    patch(&app, DEFAULT, json!({"capacity": 1})).await;
    let a = gateway(&app, "a", 2).await;
    let b = gateway(&app, "b", 2).await;
    let mut pool = Vec::new();
    for i in 0..4 {
        pool.push(tenant(&app, &format!("Pool {i}")).await);
    }
    // A move under way (`a` to `b`), the room it leaves taken, then a tenant waiting for room.
    patch(&app, &b.id, json!({"capacity": 3})).await;
    assert_eq!(placement(&app, &pool[0]).await["gatewayId"], a.id.as_str());
    assert_eq!(place(&app, &pool[0], &b.id).await["state"], "moving");
    let fill = tenant(&app, "Fill").await;
    assert_eq!(placement(&app, &fill).await["gatewayId"], a.id.as_str());
    let unplaced = tenant(&app, "No Room").await;
    assert_eq!(placement(&app, &unplaced).await["state"], "unplaced");
    assert_eq!(placement(&app, &stays).await["gatewayId"], DEFAULT);
    assert_eq!(placement(&app, &pool[1]).await["gatewayId"], b.id.as_str());
    let before = exact(&db, "the setup");

    // Back to the schema before the counts (later migrations first).
    let mut conn = db.connect();
    let mut reverted = Vec::new();
    loop {
        let version = tenant_store::migrations::revert_last(&mut conn).unwrap();
        let done = version.contains("20261206110000");
        reverted.push(version);
        if done {
            break;
        }
    }
    assert!(
        held_counts(&mut conn).is_err(),
        "no stored counts after reverting {reverted:?}"
    );
    // The previous release kept a deleted tenant's row: a tenant (placed on `b`) deleted so.
    let gone = &pool[1];
    let row = diesel::update(tenants::table.find(gone))
        .set(tenants::deleted_at.eq(tenant_core::now().naive_utc()))
        .execute(&mut conn)
        .unwrap();
    assert_eq!(row, 1);
    let rows: i64 = tenant_placements::table
        .find(gone)
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(rows, 1, "the deleted tenant's row is there");
    let applied = tenant_store::migrations::run_pending(&mut conn).unwrap();
    assert_eq!(applied.len(), reverted.len());
    let after = exact(&db, "the backfill");
    assert_eq!(
        (
            held_in(&before, DEFAULT),
            held_in(&before, &a.id),
            held_in(&before, &b.id)
        ),
        (1, 2, 3),
        "{before:?}"
    );
    assert_eq!(held_in(&after, &b.id), 2, "{after:?}");
    let gone_on = before
        .iter()
        .map(|(g, n)| (*g, *n))
        .collect::<std::collections::BTreeMap<_, _>>();
    assert_eq!(total(&after), total(&before) - 1, "{before:?} {after:?}");
    assert!(
        after
            .iter()
            .all(|(g, n)| gone_on.get(g).is_some_and(|m| n <= m)),
        "{before:?} {after:?}"
    );
    assert_eq!(held_in(&after, &a.id), 2, "{after:?}");
}

/// `moltbot-saas gateways check` finds stored counts that a write outside the control plane
/// made wrong (and a deleted tenant's leftover row), exits with an error, and with `--repair`
/// sets them right, audited; then it finds nothing.
#[tokio::test]
async fn gateways_check_finds_and_repairs_wrong_counts() {
    use diesel::prelude::*;
    use tenant_store::schema::{gateways, tenant_placements, tenants};
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    patch(&app, DEFAULT, json!({"capacity": 0})).await;
    let pool = gateway(&app, "pool", 10).await;
    let kept = tenant(&app, "Kept").await;
    let gone = tenant(&app, "Gone").await;
    assert_eq!(placement(&app, &kept).await["gatewayId"], pool.id.as_str());
    assert_eq!(placement(&app, &gone).await["gatewayId"], pool.id.as_str());
    exact(&db, "the setup");

    let clean = crate::config_sync::run_awaited(&db, &["gateways", "check"]).await;
    let printed: Value = serde_json::from_str(&crate::config_sync::succeed(&clean)).unwrap();
    assert_eq!(
        printed,
        json!({"consistent": true, "repaired": false, "drift": [], "rowsOfDeletedTenants": 0})
    );

    // Writes behind the control plane's back: a count raised, a tenant deleted with its row left.
    let mut conn = db.connect();
    diesel::update(gateways::table.find(&pool.id))
        .set(gateways::held.eq(gateways::held + 3))
        .execute(&mut conn)
        .unwrap();
    diesel::update(tenants::table.find(&gone))
        .set(tenants::deleted_at.eq(tenant_core::now().naive_utc()))
        .execute(&mut conn)
        .unwrap();
    // The stored count was 2: `gone`'s deletion outside the control plane left it at 2 + 3.
    let found = json!({
        "consistent": false,
        "drift": [{"id": pool.id, "name": "pool", "stored": 5, "counted": 1}],
        "rowsOfDeletedTenants": 1,
    });
    let wrong = crate::config_sync::run_awaited(&db, &["gateways", "check"]).await;
    assert!(!wrong.status.success(), "a wrong count fails the check");
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(stderr.contains("gateways check --repair"), "{stderr}");
    let mut printed: Value = serde_json::from_slice(&wrong.stdout).unwrap();
    assert_eq!(printed["repaired"], false);
    printed.as_object_mut().unwrap().remove("repaired");
    assert_eq!(printed, found);
    assert_eq!(
        held_counts(&mut conn).unwrap(),
        vec![(pool.id.parse().unwrap(), 5)],
        "a check without --repair changes nothing"
    );

    let repaired = crate::config_sync::run_awaited(&db, &["gateways", "check", "--repair"]).await;
    let mut printed: Value = serde_json::from_str(&crate::config_sync::succeed(&repaired)).unwrap();
    assert_eq!(printed["repaired"], true);
    printed.as_object_mut().unwrap().remove("repaired");
    assert_eq!(printed, found);
    exact(&db, "the repair");
    let rows: i64 = tenant_placements::table
        .find(&gone)
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(rows, 0, "the deleted tenant's row is gone");
    let audit = app
        .get(&format!(
            "/audit?action=gateway.held_repaired&resourceId={}",
            pool.id
        ))
        .await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.text);
    let entries = audit.body["events"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{}", audit.text);
    assert_eq!(entries[0]["actor"]["type"], "cli", "{}", audit.text);
    assert_eq!(
        entries[0]["details"],
        json!({"stored": 5, "counted": 1}),
        "{}",
        audit.text
    );

    let again = crate::config_sync::run_awaited(&db, &["gateways", "check"]).await;
    let printed: Value = serde_json::from_str(&crate::config_sync::succeed(&again)).unwrap();
    assert_eq!(printed["consistent"], true);
}

/// Many placements written at once (a drain, a failover, moves completed, a batch of waiting
/// tenants placed): new rows and replaced ones, counts moved once per gateway by the sum of the
/// changes, read back in the order asked; a batch naming a deleted tenant writes nothing.
#[tokio::test]
async fn many_placements_are_written_at_once_with_exact_counts() {
    use tenant_core::{PlacementState, TenantId};
    use tenant_store::gateways::{Placement, lock_fleet, placements, set_placements};
    use tenant_store::{StoreError, config_revision, write_transaction};

    let db = TestDb::new();
    let app = spawn_app(&db).await;
    // Created while `default` is the only gateway: no row.
    let bare = tenant(&app, "Bare").await;
    let bare_id: TenantId = bare.parse().unwrap();
    let a = gateway(&app, "a", 10).await;
    let b = gateway(&app, "b", 10).await;
    patch(&app, &a.id, json!({"draining": true})).await;
    patch(&app, &b.id, json!({"draining": true})).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(tenant(&app, &format!("Batch {i}")).await);
    }
    let tenants: Vec<TenantId> = ids.iter().map(|t| t.parse().unwrap()).collect();
    let ga: GatewayId = a.id.parse().unwrap();
    let gb: GatewayId = b.id.parse().unwrap();
    delete(&app, &ids[5]).await;
    // Stopped: no background placement of its own meanwhile.
    app.stop().await;
    // Both closed: every tenant is on `default` (unlimited).
    let counts = exact(&db, "seven creates, one deleted");
    assert_eq!(
        (
            held_in(&counts, DEFAULT),
            held_in(&counts, &a.id),
            held_in(&counts, &b.id)
        ),
        (6, 0, 0)
    );
    let mut conn = db.connect();
    let now = tenant_core::now();
    let placed = |t: TenantId, g: GatewayId| Placement {
        gateway_id: Some(g),
        ..Placement::on_default(t)
    };
    // Every tenant on `a`, the bare one included (a new row), the others replaced.
    let mut next: Vec<Placement> = tenants[..5].iter().map(|t| placed(*t, ga)).collect();
    next.push(placed(bare_id, ga));
    let revision = config_revision::current(&mut conn).unwrap();
    write_transaction(&mut conn, |c| {
        set_placements(&mut lock_fleet(c)?, &next, now)
    })
    .unwrap();
    assert!(config_revision::current(&mut conn).unwrap() > revision);
    let counts = exact(&db, "six placed on a");
    assert_eq!(
        (
            held_in(&counts, DEFAULT),
            held_in(&counts, &a.id),
            held_in(&counts, &b.id)
        ),
        (0, 6, 0)
    );
    // Three move to `b`, one is unplaced, one stays (written again unchanged).
    let moving = Placement {
        target_gateway_id: Some(gb),
        state: PlacementState::Moving,
        ..placed(tenants[0], ga)
    };
    let unplaced = Placement {
        gateway_id: None,
        state: PlacementState::Unplaced,
        ..Placement::on_default(tenants[1])
    };
    let next = vec![
        moving,
        unplaced,
        placed(tenants[2], gb),
        placed(tenants[3], gb),
        placed(tenants[4], ga),
    ];
    write_transaction(&mut conn, |c| {
        set_placements(&mut lock_fleet(c)?, &next, now)
    })
    .unwrap();
    let counts = exact(&db, "three to b, one unplaced");
    assert_eq!((held_in(&counts, &a.id), held_in(&counts, &b.id)), (2, 3));
    // Read back in the order asked, a tenant of no row on `default`.
    let asked = [tenants[3], tenants[0], tenants[1], tenants[4]];
    assert_eq!(
        placements(&mut conn, &asked).unwrap(),
        vec![next[3], next[0], next[1], next[4]]
    );
    // A batch naming a deleted tenant is refused whole.
    let refused = write_transaction(&mut conn, |c| {
        set_placements(
            &mut lock_fleet(c)?,
            &[placed(tenants[4], gb), placed(tenants[5], gb)],
            now,
        )
    });
    assert!(
        matches!(refused, Err(StoreError::NotFound("tenant"))),
        "{refused:?}"
    );
    assert_eq!(exact(&db, "a refused batch"), counts);
    assert_eq!(
        placements(&mut conn, &[tenants[4]]).unwrap(),
        vec![placed(tenants[4], ga)]
    );
}
