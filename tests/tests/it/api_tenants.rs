//! `/health`, `/ready` and `/tenants` through a real server.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use moltbot_saas_tests::{TestDb, spawn_app};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tenant_store::audit;

#[tokio::test]
async fn health_and_ready_answer_without_a_token() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    for path in ["/health", "/ready"] {
        let r = app.request_as(None, reqwest::Method::GET, path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        assert_eq!(r.body["status"], "ok", "{path}");
        assert!(
            r.headers.contains_key("x-request-id"),
            "{path} carries a request id"
        );
    }
    let r = app.get("/ready").await;
    assert_eq!(r.body["database"], db.backend());
    let r = app.get("/health").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.get("database").is_none());
}

#[tokio::test]
async fn create_then_read_a_tenant() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let r = app
        .post(
            "/tenants",
            &json!({"name": "Acme Corp", "slug": "acme", "plan": "pro"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let created = r.body;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        r.headers["location"].to_str().unwrap(),
        format!("/tenants/{id}")
    );
    let key = created["apiKey"].as_str().unwrap();
    assert!(key.starts_with("msk_live_"), "{key}");
    assert_eq!(created["name"], "Acme Corp");
    assert_eq!(created["slug"], "acme");
    assert_eq!(created["plan"], "pro");
    assert_eq!(created["status"], "active");
    assert_eq!(created["accountId"], format!("tenant-{}", &id[..8]));
    assert_eq!(created["agentId"], format!("agent-{}", &id[..8]));
    assert!(created["createdAt"].is_string());

    let r = app.get(&format!("/tenants/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["name"], "Acme Corp");
    assert_eq!(r.body["accountId"], created["accountId"]);
    assert_eq!(r.body["createdAt"], created["createdAt"]);
    assert!(r.body.get("apiKey").is_none(), "the key is shown only once");
    assert!(!r.text.contains(key));

    // Defaults: derived slug, free plan.
    let other = app.create_tenant("Globex Ltd").await;
    assert_eq!(other["slug"], "globex-ltd");
    assert_eq!(other["plan"], "free");

    // Only the key's hash is stored.
    let mut conn = db.connect();
    let tenant_id: tenant_core::TenantId = id.parse().unwrap();
    let stored = tenant_store::api_keys::list(&mut conn, &tenant_id).unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0].key_hash, key);
    assert!(key.starts_with(&stored[0].prefix));
    // Stored as HMAC-SHA256 under the server's secret, not as a plain hash of the key.
    assert_eq!(stored[0].role, "owner");
    let plain = tenant_service::tokens::hash_token_hex(key);
    assert!(
        tenant_store::api_keys::find_by_hash(&mut conn, &plain)
            .unwrap()
            .is_none()
    );
    assert_eq!(stored[0].key_hash.len(), 64);
}

#[tokio::test]
async fn update_and_delete_a_tenant() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let created = app.create_tenant("Acme Corp").await;
    let id = created["id"].as_str().unwrap();
    let path = format!("/tenants/{id}");

    let r = app
        .patch(
            &path,
            &json!({"name": "Acme Industries", "plan": "starter"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["name"], "Acme Industries");
    assert_eq!(r.body["plan"], "starter");
    assert_eq!(
        r.body["slug"], "acme-corp",
        "the slug does not follow the name"
    );
    assert_eq!(r.body["status"], "active");

    let r = app.patch(&path, &json!({"status": "suspended"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "suspended");
    assert_eq!(r.body["name"], "Acme Industries", "other fields unchanged");
    let r = app.get(&path).await;
    assert_eq!(r.body["status"], "suspended");
    assert_eq!(r.body["plan"], "starter");

    let r = app.patch(&path, &json!({"slug": "acme-new"})).await;
    assert_eq!(r.body["slug"], "acme-new");

    let r = app.delete(&path).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.text.is_empty());
    app.get(&path)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");

    // Every change left an audit row, which outlives the tenant.
    let mut conn = db.connect();
    let rows = audit::list_for_tenant(&mut conn, &id.parse().unwrap(), 50).unwrap();
    let mut actions: Vec<&str> = rows.iter().map(|r| r.action.as_str()).collect();
    actions.sort_unstable();
    assert_eq!(
        actions,
        [
            "key.created",
            "tenant.created",
            "tenant.deleted",
            "tenant.updated",
            "tenant.updated",
            "tenant.updated",
        ]
    );
    assert!(rows.iter().all(|r| r.actor_type == "service_token"));
    assert!(rows.iter().all(|r| r.request_id.is_some()));
}

#[tokio::test]
async fn unknown_and_deleted_tenants_are_404() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let unknown = uuid::Uuid::new_v4();
    let path = format!("/tenants/{unknown}");
    app.get(&path)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    app.patch(&path, &json!({"name": "x"}))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    app.delete(&path)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");

    let created = app.create_tenant("Short Lived").await;
    let path = format!("/tenants/{}", created["id"].as_str().unwrap());
    assert_eq!(app.delete(&path).await.status, StatusCode::NO_CONTENT);
    app.get(&path)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    app.patch(&path, &json!({"plan": "pro"}))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    app.delete(&path)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    let r = app.get("/tenants").await;
    assert_eq!(r.body["tenants"], json!([]));

    // A path no route serves is a JSON 404 too.
    app.get("/no-such-route")
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn a_taken_slug_is_a_conflict_on_create_and_update() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    app.create_tenant_with(&json!({"name": "Acme", "slug": "acme"}))
        .await;
    let before = db.row_counts();
    let r = app
        .post("/tenants", &json!({"name": "Other Acme", "slug": "acme"}))
        .await;
    r.assert_error(StatusCode::CONFLICT, "conflict");
    assert_eq!(r.body["error"]["details"]["field"], "slug");
    assert_eq!(db.row_counts(), before, "nothing written");

    let other = app.create_tenant("Globex").await;
    let path = format!("/tenants/{}", other["id"].as_str().unwrap());
    let before = db.row_counts();
    let r = app.patch(&path, &json!({"slug": "acme"})).await;
    r.assert_error(StatusCode::CONFLICT, "conflict");
    assert_eq!(r.body["error"]["details"]["field"], "slug");
    assert_eq!(db.row_counts(), before, "nothing written");
    assert_eq!(app.get(&path).await.body["slug"], "globex");

    // A derived slug that is taken is disambiguated instead.
    let again = app.create_tenant("Acme").await;
    let hex = &again["id"].as_str().unwrap()[..8];
    assert_eq!(again["slug"], format!("acme-{hex}"));
}

async fn list_all(app: &moltbot_saas_tests::TestApp, query: &str, limit: u32) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/tenants?limit={limit}");
        if !query.is_empty() {
            path.push('&');
            path.push_str(query);
        }
        if let Some(c) = &cursor {
            path.push_str("&cursor=");
            path.push_str(c);
        }
        let r = app.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        let page = r.body["tenants"].as_array().unwrap().clone();
        assert!(page.len() <= limit as usize);
        pages.push(page);
        match r.body.get("nextCursor").and_then(Value::as_str) {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages.len() <= 100, "pagination does not terminate");
    }
    pages
}

fn names(pages: &[Vec<Value>]) -> Vec<String> {
    pages
        .iter()
        .flatten()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn list_paginates_with_limit_and_cursor() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let mut created = Vec::new();
    for i in 0..7 {
        let t = app.create_tenant(&format!("Tenant {i}")).await;
        created.push(t["id"].as_str().unwrap().to_owned());
    }
    let pages = list_all(&app, "", 3).await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [3, 3, 1],
        "7 tenants in pages of 3"
    );
    let ids: Vec<String> = pages
        .iter()
        .flatten()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        ids.len(),
        "no duplicates"
    );
    assert_eq!(ids, created, "creation order, no gaps");
    // The list shows tenants without their keys.
    assert!(pages.iter().flatten().all(|t| t.get("apiKey").is_none()));

    let r = app.get("/tenants").await;
    assert_eq!(
        r.body["tenants"].as_array().unwrap().len(),
        7,
        "default limit 50"
    );
    assert!(r.body.get("nextCursor").is_none());
}

#[tokio::test]
async fn list_filters_by_status_plan_and_name() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    for (name, plan) in [
        ("Alpha 100% Co", "pro"),
        ("Beta 1000 Co", "pro"),
        ("Gamma_One", "free"),
        ("GammaXOne", "enterprise"),
        ("Delta", "pro"),
    ] {
        app.create_tenant_with(&json!({"name": name, "plan": plan}))
            .await;
    }
    let delta = app.get("/tenants?q=delta").await.body["tenants"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .patch(
            &format!("/tenants/{delta}"),
            &json!({"status": "suspended"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);

    assert_eq!(
        names(&list_all(&app, "plan=pro", 1).await),
        ["Alpha 100% Co", "Beta 1000 Co", "Delta"]
    );
    assert_eq!(
        names(&list_all(&app, "plan=pro&status=active", 1).await),
        ["Alpha 100% Co", "Beta 1000 Co"]
    );
    assert_eq!(
        names(&list_all(&app, "status=suspended", 2).await),
        ["Delta"]
    );
    assert_eq!(names(&list_all(&app, "status=active", 2).await).len(), 4);
    // `%` and `_` are literal; the search ignores case.
    assert_eq!(names(&list_all(&app, "q=%25", 2).await), ["Alpha 100% Co"]);
    assert_eq!(names(&list_all(&app, "q=_", 2).await), ["Gamma_One"]);
    assert_eq!(
        names(&list_all(&app, "q=GAMMA", 1).await),
        ["Gamma_One", "GammaXOne"]
    );
    assert_eq!(
        names(&list_all(&app, "q=co&plan=pro", 1).await),
        ["Alpha 100% Co", "Beta 1000 Co"]
    );
    assert!(names(&list_all(&app, "q=zeta", 2).await).is_empty());
}
