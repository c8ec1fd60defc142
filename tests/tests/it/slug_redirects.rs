//! Slug changes on per-tenant hosts (`{slug}.localhost`): the old host answers `308` to the same
//! path and query on the new one (pages and the `/tenant/…` API) until the redirect expires, then
//! `404` like an unknown slug; a tenant that takes an old slug takes its host; a deleted
//! tenant's redirects go with it; the background maintenance purges expired and shadowed rows.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Utc;
use diesel::prelude::*;
use moltbot_saas_tests::{TestApp, TestDb, spawn_app_with, test_settings};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenant_core::TenantId;
use tenant_store::schema::tenant_slug_redirects;
use tenant_store::slug_redirects;

use crate::ui_support::Browser;

async fn app_on_localhost(db: &TestDb, ttl_secs: u64) -> TestApp {
    let mut settings = test_settings(db);
    settings.ui.base_domain = Some("localhost".into());
    settings.slug_redirect_ttl = std::time::Duration::from_secs(ttl_secs);
    spawn_app_with(settings).await
}

/// A request on `host` (port of the app), not following redirects.
async fn call(
    app: &TestApp,
    host: &str,
    token: &str,
    method: Method,
    path: &str,
) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut req = client
        .request(method.clone(), format!("{}{path}", app.address))
        .header("host", format!("{host}:{}", app.port))
        .bearer_auth(token);
    if method == Method::POST {
        req = req.json(&json!({"channel": "telegram"}));
    }
    req.send().await.unwrap()
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn rename(app: &TestApp, id: &str, slug: &str) -> StatusCode {
    app.patch(&format!("/tenants/{id}"), &json!({"slug": slug}))
        .await
        .status
}

fn redirects_of(db: &TestDb, id: &str) -> Vec<String> {
    let id: TenantId = id.parse().unwrap();
    slug_redirects::for_tenant(&mut db.connect(), &id)
        .unwrap()
        .into_iter()
        .map(|r| r.old_slug)
        .collect()
}

#[tokio::test]
async fn a_renamed_tenants_old_host_redirects_until_it_expires() {
    let db = TestDb::new();
    let app = app_on_localhost(&db, 30 * 86_400).await;
    let port = app.port;
    let alpha = app
        .create_tenant_with(&json!({"name": "Alpha", "slug": "alpha"}))
        .await;
    let (id, key) = (
        alpha["id"].as_str().unwrap(),
        alpha["apiKey"].as_str().unwrap(),
    );
    assert_eq!(rename(&app, id, "alpha-two").await, StatusCode::OK);
    let rows = slug_redirects::for_tenant(&mut db.connect(), &id.parse().unwrap()).unwrap();
    assert_eq!(rows.len(), 1);
    let days = (rows[0].expires_at - rows[0].created_at).num_days();
    assert_eq!(days, 30, "SAAS_SLUG_REDIRECT_TTL_SECS is the row's life");

    // The old host: pages and the API, path and query kept, any method.
    let mut old = Browser::new(&app).on_host("alpha.localhost", port);
    let page = old.get("/portal?tab=keys&x=%3Cy%3E").await;
    assert_eq!(page.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        page.location(),
        format!("//alpha-two.localhost:{port}/portal?tab=keys&x=%3Cy%3E")
    );
    assert_eq!(
        page.headers.get("cache-control").unwrap(),
        "no-store",
        "the name may later be another tenant's"
    );
    let login = old.get("/login").await;
    assert_eq!(login.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        login.location(),
        format!("//alpha-two.localhost:{port}/login")
    );
    let r = call(
        &app,
        "alpha.localhost",
        key,
        Method::GET,
        "/tenant/channels?x=1",
    )
    .await;
    assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        location(&r),
        format!("//alpha-two.localhost:{port}/tenant/channels?x=1")
    );
    let r = call(
        &app,
        "alpha.localhost",
        key,
        Method::POST,
        "/tenant/channels",
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::PERMANENT_REDIRECT,
        "308 keeps the method"
    );
    let r = call(
        &app,
        "alpha.localhost",
        key,
        Method::GET,
        &format!("/tenants/{id}"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        location(&r),
        format!("//alpha-two.localhost:{port}/tenants/{id}")
    );
    // Nothing was created through the old host.
    let r = call(
        &app,
        "alpha-two.localhost",
        key,
        Method::GET,
        "/tenant/channels",
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["channels"].as_array().unwrap().len(), 0);

    // The new host works.
    let mut new = Browser::new(&app).on_host("alpha-two.localhost", port);
    let login = new.get("/login").await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.html.contains("Log in to Alpha"));
    let r = call(&app, "alpha-two.localhost", key, Method::GET, "/tenant").await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["slug"], "alpha-two");

    // A second change: both old slugs lead to the current one, in one hop.
    assert_eq!(rename(&app, id, "alpha-three").await, StatusCode::OK);
    for host in ["alpha", "alpha-two"] {
        let r = call(
            &app,
            &format!("{host}.localhost"),
            key,
            Method::GET,
            "/tenant",
        )
        .await;
        assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT, "{host}");
        assert_eq!(
            location(&r),
            format!("//alpha-three.localhost:{port}/tenant")
        );
    }
    let mut slugs = redirects_of(&db, id);
    slugs.sort();
    assert_eq!(slugs, ["alpha", "alpha-two"]);

    // A slug never used is still unknown.
    let r = call(&app, "nobody.localhost", key, Method::GET, "/tenant").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // `alpha` expires: 404 like an unknown slug, page and API; `alpha-two` still redirects.
    let past = (Utc::now() - chrono::Duration::seconds(1)).naive_utc();
    diesel::update(tenant_slug_redirects::table.find("alpha"))
        .set(tenant_slug_redirects::expires_at.eq(past))
        .execute(&mut db.connect())
        .unwrap();
    let expired = old.get("/login").await;
    assert_eq!(expired.status, StatusCode::NOT_FOUND);
    assert!(expired.html.contains("No such tenant"));
    let r = call(
        &app,
        "alpha.localhost",
        key,
        Method::GET,
        "/tenant/channels",
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    let r = call(&app, "alpha-two.localhost", key, Method::GET, "/tenant").await;
    assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);

    // The maintenance purge removes the expired row only.
    let purged = slug_redirects::delete_expired(&mut db.connect(), Utc::now()).unwrap();
    assert_eq!(purged, 1);
    assert_eq!(redirects_of(&db, id), ["alpha-two"]);

    // Renaming back to a former slug ends its redirect (the tenant holds it again).
    assert_eq!(rename(&app, id, "alpha-two").await, StatusCode::OK);
    assert_eq!(redirects_of(&db, id), ["alpha-three"]);
    let r = call(&app, "alpha-two.localhost", key, Method::GET, "/tenant").await;
    assert_eq!(r.status(), StatusCode::OK);

    // Deleting the tenant removes its redirects.
    assert_eq!(
        app.delete(&format!("/tenants/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert!(redirects_of(&db, id).is_empty());
    let count: i64 = tenant_slug_redirects::table
        .count()
        .get_result(&mut db.connect())
        .unwrap();
    assert_eq!(count, 0);
    let mut gone = Browser::new(&app).on_host("alpha-three.localhost", port);
    assert_eq!(gone.get("/login").await.status, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn an_old_slug_taken_by_another_tenant_is_theirs() {
    let db = TestDb::new();
    let app = app_on_localhost(&db, 30 * 86_400).await;
    let port = app.port;
    let alpha = app
        .create_tenant_with(&json!({"name": "Alpha", "slug": "alpha"}))
        .await;
    let a_id = alpha["id"].as_str().unwrap();
    assert_eq!(rename(&app, a_id, "alpha-two").await, StatusCode::OK);

    // A new tenant may take `alpha` at once; its host is the new tenant's.
    let taker = app
        .create_tenant_with(&json!({"name": "Taker", "slug": "alpha"}))
        .await;
    let (t_id, t_key) = (
        taker["id"].as_str().unwrap(),
        taker["apiKey"].as_str().unwrap(),
    );
    let r = call(&app, "alpha.localhost", t_key, Method::GET, "/tenant").await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["id"], t_id);
    let mut host = Browser::new(&app).on_host("alpha.localhost", port);
    let login = host.get("/login").await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.html.contains("Log in to Taker"));
    // The shadowed row is purged by the maintenance, expired or not.
    assert_eq!(redirects_of(&db, a_id), ["alpha"]);
    assert_eq!(
        slug_redirects::delete_expired(&mut db.connect(), Utc::now()).unwrap(),
        1
    );
    assert!(redirects_of(&db, a_id).is_empty());

    // Renaming onto another tenant's old slug ends that redirect in the same change.
    let bravo = app
        .create_tenant_with(&json!({"name": "Bravo", "slug": "bravo"}))
        .await;
    let (b_id, b_key) = (
        bravo["id"].as_str().unwrap(),
        bravo["apiKey"].as_str().unwrap(),
    );
    assert_eq!(rename(&app, b_id, "bravo-two").await, StatusCode::OK);
    let r = call(&app, "bravo.localhost", b_key, Method::GET, "/tenant").await;
    assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(rename(&app, a_id, "bravo").await, StatusCode::OK);
    assert!(redirects_of(&db, b_id).is_empty());
    assert_eq!(redirects_of(&db, a_id), ["alpha-two"]);
    let r = call(&app, "bravo.localhost", b_key, Method::GET, "/tenant").await;
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "bravo's key on alpha's host"
    );
    let a_key = alpha["apiKey"].as_str().unwrap();
    let r = call(&app, "bravo.localhost", a_key, Method::GET, "/tenant").await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["id"], a_id);
    // A slug a tenant holds is still refused to another.
    assert_eq!(rename(&app, t_id, "bravo").await, StatusCode::CONFLICT);
    app.stop().await;
}

#[tokio::test]
async fn a_zero_ttl_keeps_no_redirect() {
    let db = TestDb::new();
    let app = app_on_localhost(&db, 0).await;
    let alpha = app
        .create_tenant_with(&json!({"name": "Alpha", "slug": "alpha"}))
        .await;
    let (id, key) = (
        alpha["id"].as_str().unwrap(),
        alpha["apiKey"].as_str().unwrap(),
    );
    assert_eq!(rename(&app, id, "alpha-two").await, StatusCode::OK);
    assert!(redirects_of(&db, id).is_empty());
    let r = call(&app, "alpha.localhost", key, Method::GET, "/tenant").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}
