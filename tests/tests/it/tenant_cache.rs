//! The read cache of `GET /tenants/{id}` against two server instances on one database, like two
//! replicas: a change is visible at once on the instance that made it, and on the other once it
//! synced with the store's revision; deletions too; with the cache off every read is fresh.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use moltbot_saas_tests::{TestApp, TestDb, spawn_app_with, test_settings};
use reqwest::StatusCode;
use serde_json::json;

async fn replica(db: &TestDb, cache_size: usize) -> TestApp {
    replica_syncing(db, cache_size, Duration::from_millis(50)).await
}

async fn replica_syncing(db: &TestDb, cache_size: usize, sync: Duration) -> TestApp {
    let mut settings = test_settings(db);
    // Both replicas accept the same tokens, as real replicas share their configuration.
    settings.admin_token = Some(tenant_core::Secret::new(
        "replica-operator-token-0123456789abcdef",
    ));
    settings.tenant_cache_size = cache_size;
    settings.tenant_cache_sync = sync;
    spawn_app_with(settings).await
}

/// Polls `GET path` on `app` until `done` holds for the answer, for at most 30 s.
async fn eventually(
    app: &TestApp,
    path: &str,
    done: impl Fn(StatusCode, &serde_json::Value) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = app.get(path).await;
        if done(r.status, &r.body) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never became as expected: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn changes_reach_the_other_replica_and_the_writer_reads_its_own() {
    let db = TestDb::new();
    let a = replica(&db, 100).await;
    let b = replica(&db, 100).await;
    let id = a.create_tenant("Cached Co").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/tenants/{id}");
    // Both read it (B now holds it in its cache, once synced).
    eventually(&b, &path, |s, body| {
        s == StatusCode::OK && body["name"] == "Cached Co"
    })
    .await;
    assert_eq!(a.get(&path).await.body["name"], "Cached Co");

    // A renames it: A answers the new name at once, B once it saw the revision move.
    let r = a.patch(&path, &json!({"name": "Renamed Co"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(a.get(&path).await.body["name"], "Renamed Co");
    eventually(&b, &path, |_, body| body["name"] == "Renamed Co").await;

    // B deletes it: B answers 404 at once, A once synced.
    assert_eq!(b.delete(&path).await.status, StatusCode::NO_CONTENT);
    assert_eq!(b.get(&path).await.status, StatusCode::NOT_FOUND);
    eventually(&a, &path, |s, _| s == StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn the_answer_is_the_same_with_and_without_the_cache() {
    let db = TestDb::new();
    let cached = replica(&db, 100).await;
    let plain = replica(&db, 0).await;
    let id = cached.create_tenant("Same Answer").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/tenants/{id}");
    eventually(&cached, &path, |s, _| s == StatusCode::OK).await;
    // Twice from the cache, once from the store: byte for byte the same body and type.
    let (one, two, fresh) = (
        cached.get(&path).await,
        cached.get(&path).await,
        plain.get(&path).await,
    );
    assert_eq!(one.text, fresh.text);
    assert_eq!(two.text, fresh.text);
    assert_eq!(one.headers["content-type"], fresh.headers["content-type"]);
    // Without a cache a change through the other instance shows at once.
    let r = cached.patch(&path, &json!({"plan": "pro"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(plain.get(&path).await.body["plan"], "pro");
}

#[tokio::test]
async fn reads_are_served_from_the_cache_until_the_revision_moves() {
    use diesel::prelude::*;
    use tenant_store::schema::tenants;

    let db = TestDb::new();
    let app = replica_syncing(&db, 100, Duration::from_millis(500)).await;
    let id = app.create_tenant("Before").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/tenants/{id}");
    // Past the next sync (which sees the create's revision), a read caches the tenant.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(app.get(&path).await.body["name"], "Before");
    // A change behind the store's back (no revision bump) is not seen: the cache answers.
    let mut conn = db.connect();
    diesel::update(tenants::table.find(&id))
        .set(tenants::name.eq("Behind"))
        .execute(&mut conn)
        .unwrap();
    for _ in 0..3 {
        assert_eq!(app.get(&path).await.body["name"], "Before");
    }
    // Once the revision moves (as any real change makes it), the next sync drops the entry.
    tenant_store::config_revision::bump(&mut conn).unwrap();
    eventually(&app, &path, |_, body| body["name"] == "Behind").await;
}
