//! The data lifecycle through a real server on both backends: retention purges what aged out and
//! keeps what must stay (pending deliveries and their events, dead letters for their own time,
//! the audit of a deletion); a big tenant's DELETE answers at once while its rows go in the
//! background without holding up another tenant; a purge cut by a restart finishes after it;
//! one replica purges at a time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use diesel::prelude::*;
use moltbot_saas_tests::{TestApp, TestDb, WebhookReceiver, spawn_app_with, test_settings};
use reqwest::StatusCode;
use serde_json::Value;
use tenant_service::lifecycle::purge::Purger;
use tenant_service::lifecycle::{Retention, RetentionPolicy};
use tenant_store::schema::{audit_log, events, webhook_deliveries};
use tenant_store::{AnyConnection, Database, DatabaseUrl, PoolConfig};

use crate::webhooks_support::{config, dispatcher, send_event, tenant_with_endpoint};

fn secs(n: u64) -> Retention {
    Retention::For(Duration::from_secs(n))
}

/// A purger on the test database with `policy`.
fn purger(db: &TestDb, policy: RetentionPolicy) -> Purger {
    let pool = Database::connect(
        &DatabaseUrl::parse(db.url()).unwrap(),
        &PoolConfig {
            max_size: 2,
            ..PoolConfig::default()
        },
    )
    .unwrap();
    Purger::new(pool, policy)
}

/// A server with the dispatcher off, 127.0.0.1 allowed, and `policy` for its own purge.
async fn app_with(db: &TestDb, policy: RetentionPolicy) -> TestApp {
    let mut settings = test_settings(db);
    settings.webhooks.dispatcher = false;
    settings.webhooks.allowed_networks = vec!["127.0.0.1/32".parse().unwrap()];
    settings.retention = policy;
    spawn_app_with(settings).await
}

/// A policy whose own rounds never run during a test (the test runs them).
fn manual(policy: RetentionPolicy) -> RetentionPolicy {
    RetentionPolicy {
        interval: Duration::from_secs(86_400),
        ..policy
    }
}

fn count_events(conn: &mut AnyConnection, tenant: &Value) -> i64 {
    events::table
        .filter(events::tenant_id.eq(tenant["id"].as_str().unwrap()))
        .count()
        .get_result(conn)
        .unwrap()
}

fn count_deliveries(conn: &mut AnyConnection, status: &str) -> i64 {
    webhook_deliveries::table
        .filter(webhook_deliveries::status.eq(status))
        .count()
        .get_result(conn)
        .unwrap()
}

fn tenant_id(tenant: &Value) -> tenant_core::TenantId {
    tenant["id"].as_str().unwrap().parse().unwrap()
}

/// Rows of the tenant left in any table (the audit log aside).
fn rows_left(db: &TestDb, tenant: &tenant_core::TenantId) -> i64 {
    tenant_store::purge::tenant_rows(&mut db.connect(), tenant)
        .unwrap()
        .iter()
        .map(|(_, n)| n)
        .sum()
}

#[tokio::test]
async fn retention_purges_what_aged_out_and_keeps_pending_and_dead_letters() {
    let db = TestDb::new();
    let app = app_with(&db, manual(RetentionPolicy::default())).await;
    let ok = WebhookReceiver::start().await;
    let failing = WebhookReceiver::start().await;
    failing.set_default(moltbot_saas_tests::Reply::status(500));
    // Tenant A: one event to two endpoints, one delivered, one dead (a one-step schedule).
    let (a, _) = tenant_with_endpoint(&app, &ok.url).await;
    let r = app
        .post(
            &format!("/tenants/{}/webhooks", a["id"].as_str().unwrap()),
            &serde_json::json!({ "url": failing.url }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    send_event(&app, &a, "life-a-1").await;
    let d = dispatcher(&db, config("0s", Duration::from_secs(2), "127.0.0.1/32"));
    let o = d.dispatch_due(Utc::now()).await.unwrap();
    assert_eq!((o.succeeded, o.failed), (1, 1));
    // Tenant B: an event whose delivery stays pending (never dispatched).
    let (b, _) = tenant_with_endpoint(&app, &ok.url).await;
    send_event(&app, &b, "life-b-1").await;
    // Tenant C: an event no endpoint wants; then C is deleted (its audit entry must stay).
    let c = app.create_tenant("No Hooks").await;
    send_event(&app, &c, "life-c-1").await;

    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let policy = RetentionPolicy {
        events: secs(1),
        deliveries: secs(1),
        dead_letters: secs(3_600),
        audit: Retention::Forever,
        ..RetentionPolicy::default()
    };
    let report = purger(&db, policy.clone()).round().await.unwrap().unwrap();
    assert_eq!(report.deliveries, 1, "{report:?}");
    assert_eq!(report.dead_letters, 0);
    assert_eq!(
        report.events, 1,
        "only C's event had nothing left to deliver"
    );
    let mut conn = db.connect();
    assert_eq!(count_deliveries(&mut conn, "succeeded"), 0);
    assert_eq!(
        count_deliveries(&mut conn, "failed"),
        1,
        "a dead letter keeps its own time"
    );
    assert_eq!(
        count_deliveries(&mut conn, "pending"),
        1,
        "a pending delivery stays"
    );
    assert_eq!(
        count_events(&mut conn, &a),
        1,
        "the dead letter keeps its event"
    );
    assert_eq!(
        count_events(&mut conn, &b),
        1,
        "the pending delivery keeps its event"
    );
    assert_eq!(count_events(&mut conn, &c), 0);

    // Deleting C: gone for the API at once, its rows and row go in the next round, its audit stays.
    let path = format!("/tenants/{}", c["id"].as_str().unwrap());
    assert_eq!(app.delete(&path).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&path).await.status, StatusCode::NOT_FOUND);
    let report = purger(&db, policy.clone()).round().await.unwrap().unwrap();
    assert_eq!(report.tenants_purged, 1);
    assert_eq!(rows_left(&db, &tenant_id(&c)), 0);
    let audit: Vec<String> = audit_log::table
        .filter(audit_log::tenant_id.eq(c["id"].as_str().unwrap()))
        .select(audit_log::action)
        .load(&mut conn)
        .unwrap();
    assert!(audit.contains(&"tenant.deleted".to_owned()), "{audit:?}");

    // Dead letters go after their own retention, and their event with them.
    let policy = RetentionPolicy {
        dead_letters: secs(1),
        ..policy
    };
    let report = purger(&db, policy).round().await.unwrap().unwrap();
    assert_eq!((report.dead_letters, report.events), (1, 1), "{report:?}");
    assert_eq!(count_events(&mut conn, &a), 0);
    assert_eq!(
        count_deliveries(&mut conn, "pending"),
        1,
        "still pending, still kept"
    );
    assert_eq!(count_events(&mut conn, &b), 1);
    app.stop().await;
    ok.stop().await;
    failing.stop().await;
}

#[tokio::test]
async fn one_replica_purges_at_a_time() {
    let db = TestDb::new();
    let app = app_with(&db, manual(RetentionPolicy::default())).await;
    let mut conn = db.connect();
    let now = Utc::now();
    let until = now + chrono::Duration::seconds(60);
    assert!(tenant_store::purge::try_lease(&mut conn, "purge", "other", now, until).unwrap());
    // Another replica's round in progress: this one skips.
    let p = purger(&db, RetentionPolicy::default());
    assert_eq!(p.round().await.unwrap(), None);
    assert!(!tenant_store::purge::try_lease(&mut conn, "purge", "third", now, until).unwrap());
    // The holder renews; an expired lease is taken over.
    assert!(tenant_store::purge::try_lease(&mut conn, "purge", "other", now, until).unwrap());
    let later = until + chrono::Duration::seconds(1);
    assert!(tenant_store::purge::try_lease(&mut conn, "purge", "third", later, later).unwrap());
    tenant_store::purge::release_lease(&mut conn, "purge", "third").unwrap();
    assert!(p.round().await.unwrap().is_some());
    app.stop().await;
}

/// Writes `n` events for the tenant, each with a pending delivery to its endpoint, straight in
/// the database (the ingest path would take minutes in a debug build).
fn seed(db: &TestDb, tenant: &Value, endpoint: &Value, n: i64) {
    let (t, e) = (
        tenant["id"].as_str().unwrap(),
        endpoint["id"].as_str().unwrap(),
    );
    let mut conn = db.connect();
    let (events_sql, deliveries_sql) = match conn {
        AnyConnection::Postgresql(_) => (
            format!(
                "INSERT INTO events (id, tenant_id, source, source_id, event_type, payload, created_at) \
                 SELECT 'seed-' || i, '{t}', 'seed', '{t}-' || i, 'message.received', '{{\"text\":\"hello\"}}', now() \
                 FROM generate_series(1, {n}) AS i"
            ),
            format!(
                "INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_id, status, attempts, \
                 next_attempt_at, created_at, updated_at) \
                 SELECT 'seed-d-' || i, '{t}', '{e}', 'seed-' || i, 'pending', 0, \
                 now() + interval '1 day', now(), now() FROM generate_series(1, {n}) AS i"
            ),
        ),
        AnyConnection::Sqlite(_) => (
            format!(
                "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) \
                 INSERT INTO events (id, tenant_id, source, source_id, event_type, payload, created_at) \
                 SELECT 'seed-' || i, '{t}', 'seed', '{t}-' || i, 'message.received', '{{\"text\":\"hello\"}}', \
                 '2026-12-01 00:00:00' FROM s"
            ),
            format!(
                "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) \
                 INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_id, status, attempts, \
                 next_attempt_at, created_at, updated_at) \
                 SELECT 'seed-d-' || i, '{t}', '{e}', 'seed-' || i, 'pending', 0, \
                 '2099-01-01 00:00:00', '2026-12-01 00:00:00', '2026-12-01 00:00:00' FROM s"
            ),
        ),
    };
    diesel::sql_query(events_sql).execute(&mut conn).unwrap();
    diesel::sql_query(deliveries_sql)
        .execute(&mut conn)
        .unwrap();
    // What autovacuum would do soon after a bulk load: the planner then walks the indexes.
    diesel::sql_query("ANALYZE").execute(&mut conn).unwrap();
}

/// Runs a walk of the purge to its end in batches of `limit`; (batches, rows seen, rows deleted).
fn walk_to_end(
    conn: &mut AnyConnection,
    limit: i64,
    mut step: impl FnMut(
        &mut AnyConnection,
        &mut tenant_store::purge::Cursor,
        i64,
    ) -> tenant_store::StoreResult<tenant_store::purge::Batch>,
) -> (usize, usize, usize) {
    let mut cursor = tenant_store::purge::Cursor::default();
    let (mut batches, mut seen, mut deleted) = (0, 0, 0);
    loop {
        let b = step(conn, &mut cursor, limit).unwrap();
        batches += 1;
        seen += b.seen;
        deleted += b.deleted;
        assert!(b.seen as i64 <= limit, "{b:?}");
        if b.done {
            return (batches, seen, deleted);
        }
        assert!(batches < 100, "the walk does not end: {cursor:?}");
    }
}

#[tokio::test]
async fn the_purge_walks_old_rows_once_by_age_and_keeps_what_deliveries_still_need() {
    use tenant_store::purge::{Finished, PlanScope, finished_deliveries, old_events};
    let db = TestDb::new();
    let app = app_with(&db, manual(RetentionPolicy::default())).await;
    let (tenant, hook) = tenant_with_endpoint(&app, "http://127.0.0.1:9/hook").await;
    let (t, e) = (tenant["id"].as_str().unwrap(), hook["id"].as_str().unwrap());
    let mut conn = db.connect();
    let event = |conn: &mut AnyConnection, id: &str, at: &str| {
        diesel::sql_query(format!(
            "INSERT INTO events (id, tenant_id, source, source_id, event_type, payload, created_at) \
             VALUES ('{id}', '{t}', 'seed', '{id}', 'message.received', '{{}}', '{at}')"
        ))
        .execute(conn)
        .unwrap();
    };
    let delivery = |conn: &mut AnyConnection, id: &str, status: &str, completed: &str| {
        diesel::sql_query(format!(
            "INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_id, status, attempts, \
             next_attempt_at, created_at, updated_at, completed_at) VALUES ('d-{id}', '{t}', '{e}', \
             '{id}', '{status}', 1, '2026-01-01 00:00:00', '2026-01-01 00:00:00', \
             '2026-01-01 00:00:00', {completed})"
        ))
        .execute(conn)
        .unwrap();
    };
    // Five events of one time kept by pending deliveries (more than a batch), and one of that
    // same time that nothing keeps: a walk by time alone would stop on the five.
    for i in 0..5 {
        event(&mut conn, &format!("held-{i}"), "2026-01-01 00:00:00");
        delivery(&mut conn, &format!("held-{i}"), "pending", "NULL");
    }
    event(&mut conn, "tie-free", "2026-01-01 00:00:00");
    for i in 1..=3 {
        event(
            &mut conn,
            &format!("old-{i}"),
            &format!("2026-01-01 00:00:0{i}"),
        );
    }
    // A dead letter keeps its event until the dead letter goes; a young event stays.
    event(&mut conn, "dead", "2026-01-01 00:00:04");
    delivery(&mut conn, "dead", "failed", "'2026-01-01 00:00:04'");
    event(&mut conn, "young", "2026-07-01 00:00:00");
    let before = "2026-06-01T00:00:00Z"
        .parse::<chrono::DateTime<Utc>>()
        .unwrap();

    let (batches, seen, deleted) = walk_to_end(&mut conn, 2, |c, at, n| {
        old_events(c, before, PlanScope::All, at, n)
    });
    assert_eq!(deleted, 4, "the tie's free event and the three old ones");
    // 10 old events in batches of 2: each looked at once, the tie's at most twice more (once
    // by time, once by id).
    assert!(
        seen <= 10 + 2 + 6,
        "{seen} rows looked at in {batches} batches"
    );
    assert_eq!(count_events(&mut conn, &tenant), 7);
    assert_eq!(count_deliveries(&mut conn, "pending"), 5);

    // The delivered pass walks past the dead letter and the pending ones are never candidates.
    let (_, seen, deleted) = walk_to_end(&mut conn, 2, |c, at, n| {
        finished_deliveries(c, Finished::Delivered, before, at, n)
    });
    assert_eq!((seen, deleted), (1, 0));
    let (_, _, deleted) = walk_to_end(&mut conn, 2, |c, at, n| {
        finished_deliveries(c, Finished::Dead, before, at, n)
    });
    assert_eq!(deleted, 1);
    let (_, _, deleted) = walk_to_end(&mut conn, 2, |c, at, n| {
        old_events(c, before, PlanScope::All, at, n)
    });
    assert_eq!(deleted, 1, "the dead letter's event, now free");
    assert_eq!(count_events(&mut conn, &tenant), 6, "five held, one young");
    assert_eq!(
        count_deliveries(&mut conn, "pending"),
        5,
        "pending: never purged"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_big_tenant_is_deleted_at_once_and_purged_without_holding_up_another() {
    let db = TestDb::new();
    let app = app_with(
        &db,
        RetentionPolicy {
            interval: Duration::from_millis(200),
            batch: 2_000,
            ..RetentionPolicy::default()
        },
    )
    .await;
    let rx = WebhookReceiver::start().await;
    let (big, hook) = tenant_with_endpoint(&app, &rx.url).await;
    let other = app.create_tenant("Other Tenant").await;
    seed(&db, &big, &hook, 50_000);
    let big_id = tenant_id(&big);
    assert!(rows_left(&db, &big_id) > 100_000);

    // The other tenant writes all along (events through the gateway's ingest path).
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (app_url, token, other, stop) = (
            app.address.clone(),
            app.gateway_token.clone(),
            other.clone(),
            Arc::clone(&stop),
        );
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut worst = Duration::ZERO;
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let r = client
                    .post(format!("{app_url}/events"))
                    .bearer_auth(&token)
                    .json(&serde_json::json!({
                        "id": format!("other-{n}"),
                        "type": "message.received",
                        "accountId": other["accountId"],
                        "data": {"text": "hi"},
                    }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::ACCEPTED);
                worst = worst.max(started.elapsed());
                n += 1;
            }
            (n, worst)
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let path = format!("/tenants/{big_id}");
    assert_eq!(app.delete(&path).await.status, StatusCode::NO_CONTENT);
    let took = started.elapsed();
    // A generous bound (the measured figures are in docs/benchmarks.md).
    assert!(took < Duration::from_secs(2), "DELETE took {took:?}");
    assert_eq!(app.get(&path).await.status, StatusCode::NOT_FOUND);
    let key = big["apiKey"].as_str().unwrap();
    let r = app
        .request_as(Some(key), reqwest::Method::GET, &path, None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "its keys are refused");

    let deadline = Instant::now() + Duration::from_secs(180);
    while rows_left(&db, &big_id) > 0 {
        assert!(Instant::now() < deadline, "the purge did not finish");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let (writes, worst) = writer.await.unwrap();
    assert!(writes > 0);
    assert!(
        worst < Duration::from_secs(5),
        "another tenant's write waited {worst:?}"
    );
    // Every acknowledged write is there (and the usage notices the quota rules added).
    assert!(count_events(&mut db.connect(), &other) >= i64::from(writes));
    app.stop().await;
    rx.stop().await;
}

#[tokio::test]
async fn a_purge_cut_by_a_restart_finishes_after_it() {
    let db = TestDb::new();
    let policy = RetentionPolicy {
        interval: Duration::from_millis(100),
        batch: 50,
        ..RetentionPolicy::default()
    };
    let first = app_with(&db, policy.clone()).await;
    let rx = WebhookReceiver::start().await;
    let (big, hook) = tenant_with_endpoint(&first, &rx.url).await;
    seed(&db, &big, &hook, 10_000);
    let id = tenant_id(&big);
    let before = rows_left(&db, &id);
    assert_eq!(
        first.delete(&format!("/tenants/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while rows_left(&db, &id) == before {
        assert!(Instant::now() < deadline, "the purge did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.stop().await;
    let cut = rows_left(&db, &id);
    assert!(
        cut > 0 && cut < before,
        "stopped midway: {cut} of {before} left"
    );

    let second = app_with(&db, policy).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while rows_left(&db, &id) > 0 {
        assert!(Instant::now() < deadline, "the purge did not resume");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    second.stop().await;
    rx.stop().await;
}

#[tokio::test]
async fn a_tenant_export_is_ndjson_of_everything_it_owns_without_secrets() {
    let db = TestDb::new();
    let app = app_with(&db, manual(RetentionPolicy::default())).await;
    let rx = WebhookReceiver::start().await;
    let (tenant, hook) = tenant_with_endpoint(&app, &rx.url).await;
    let id = tenant["id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/tenants/{id}/channels"),
            &serde_json::json!({"channel": "telegram", "credentials": {"botToken": "123456:AAexportTOKEN_value"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    send_event(&app, &tenant, "export-1").await;
    seed(&db, &tenant, &hook, 1_234);
    let other = app.create_tenant("Someone Else").await;

    let path = format!("/tenants/{id}/export");
    let owner_key = tenant["apiKey"].as_str().unwrap();
    for token in [Some(app.operator_token.as_str()), Some(owner_key)] {
        let r = app
            .request_as(token, reqwest::Method::GET, &path, None)
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let mut types = std::collections::BTreeMap::<String, usize>::new();
        for line in r.text.lines() {
            let record: Value = serde_json::from_str(line).expect("every line is JSON");
            *types
                .entry(record["type"].as_str().unwrap().to_owned())
                .or_default() += 1;
            assert_ne!(record["id"], other["id"]);
        }
        assert_eq!(types["tenant"], 1);
        assert_eq!(types["channel"], 1);
        assert_eq!(types["api_key"], 1);
        assert_eq!(types["webhook_endpoint"], 1);
        assert_eq!(types["event"], 1_235, "more than one page of events");
        assert_eq!(types["delivery"], 1_235);
        assert!(types["audit"] >= 3, "{types:?}");
        assert!(r.text.contains("\"state\":\"ready\""));
        for secret in [
            owner_key,
            "AAexportTOKEN_value",
            hook["secret"].as_str().unwrap(),
        ] {
            assert!(!r.text.contains(secret), "the export shows no secret");
        }
    }
    // Another tenant's key may not export it; an unknown tenant is a 404.
    let r = app
        .request_as(other["apiKey"].as_str(), reqwest::Method::GET, &path, None)
        .await;
    assert!(
        r.status == StatusCode::FORBIDDEN || r.status == StatusCode::NOT_FOUND,
        "{}",
        r.status
    );
    app.get(&format!("/tenants/{}/export", uuid::Uuid::new_v4()))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    app.stop().await;
    rx.stop().await;
}
