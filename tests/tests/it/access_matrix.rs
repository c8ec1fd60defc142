//! The cross-tenant matrix, generated from `/openapi.json` so a new route cannot be forgotten:
//! every route × another tenant's API key → 404 (exactly like a missing tenant), and × each role
//! → allowed or 403 exactly as `tenant_server::access` (the written matrix) says.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use moltbot_saas_tests::{TestApp, TestDb, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenant_core::Role;
use tenant_server::access::{action_for, allows};

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch"];

/// Every documented (method, path template) but the public probes.
async fn documented_routes(app: &TestApp) -> Vec<(String, String)> {
    let doc = app.get("/openapi.json").await.body;
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if path == "/health" || path == "/ready" {
            continue;
        }
        for method in item.as_object().unwrap().keys() {
            if METHODS.contains(&method.as_str()) {
                routes.push((method.clone(), path.clone()));
            }
        }
    }
    routes.sort();
    routes
}

/// A key of `role` for tenant `id`, issued by the operator.
async fn key_with_role(app: &TestApp, id: &str, role: Role) -> String {
    let r = app
        .post(
            &format!("/tenants/{id}/api-keys"),
            &json!({"name": format!("{role}-key"), "role": role.as_str()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["apiKey"].as_str().unwrap().to_owned()
}

/// Fresh resources for one request on tenant `id`: the telegram channel exists and a new key
/// (returned) can be revoked or rotated.
async fn prepare(app: &TestApp, id: &str) -> String {
    let _ = app
        .post(
            &format!("/tenants/{id}/channels"),
            &json!({"channel": "telegram"}),
        )
        .await;
    let r = app
        .post(
            &format!("/tenants/{id}/api-keys"),
            &json!({"name": "victim"}),
        )
        .await;
    r.body["id"].as_str().unwrap().to_owned()
}

fn concrete(template: &str, id: &str, kid: &str) -> String {
    template
        .replace("{id}", id)
        .replace("{kind}", "telegram")
        .replace("{kid}", kid)
}

fn body_for(method: &str, template: &str) -> Option<Value> {
    match (method, template) {
        ("post", "/tenants") => Some(json!({"name": "Intruder"})),
        ("post", t) if t.ends_with("/channels") => Some(json!({"channel": "discord"})),
        ("post", t) if t.ends_with("/api-keys") => Some(json!({"name": "new"})),
        ("patch", t) if t.ends_with("{kind}") => Some(json!({"enabled": false})),
        ("patch", "/tenants/{id}") => Some(json!({"name": "Renamed"})),
        ("post" | "patch" | "put", _) => Some(json!({})),
        _ => None,
    }
}

fn is_tenant_not_found(r: &moltbot_saas_tests::TestResponse) -> bool {
    r.status == StatusCode::NOT_FOUND && r.error_message() == "tenant not found"
}

#[tokio::test]
async fn every_route_is_in_the_matrix_and_enforced() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let a = app.create_tenant("Alpha").await;
    let b = app.create_tenant("Beta").await;
    let (a_id, a_owner) = (a["id"].as_str().unwrap(), a["apiKey"].as_str().unwrap());
    let b_id = b["id"].as_str().unwrap();
    let b_owner = b["apiKey"].as_str().unwrap().to_owned();
    let b_member = key_with_role(&app, b_id, Role::Member).await;
    let a_keys = [
        (Role::Owner, a_owner.to_owned()),
        (Role::Admin, key_with_role(&app, a_id, Role::Admin).await),
        (Role::Member, key_with_role(&app, a_id, Role::Member).await),
    ];
    let routes = documented_routes(&app).await;
    assert!(routes.len() >= 20, "{routes:?}");
    let missing: Vec<_> = routes
        .iter()
        .filter(|(m, p)| action_for(m, p).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "routes without an entry in tenant_server::access::ROUTES (the permission matrix): {missing:?}"
    );

    for (method, template) in &routes {
        let action = action_for(method, template).unwrap();
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let body = body_for(method, template);
        let tenant_scoped = template.starts_with("/tenants/{id}");

        // Another tenant's keys: 404 on A's resources, whatever their role; nothing written.
        if tenant_scoped {
            let kid = prepare(&app, a_id).await;
            let path = concrete(template, a_id, &kid);
            let before = db.row_counts();
            for key in [&b_owner, &b_member] {
                let r = app
                    .request_as(Some(key), m.clone(), &path, body.as_ref())
                    .await;
                r.assert_error(StatusCode::NOT_FOUND, "not_found");
                assert!(is_tenant_not_found(&r), "{method} {template}: {}", r.text);
            }
            assert_eq!(db.row_counts(), before, "{method} {template} wrote nothing");
        }

        // Each role on its own tenant: the matrix decides.
        for (role, key) in &a_keys {
            if method == "delete" && template == "/tenants/{id}" && allows(*role, action) {
                continue; // would delete the tenant under test; no role may anyway
            }
            let kid = prepare(&app, a_id).await;
            let path = concrete(template, a_id, &kid);
            let r = app
                .request_as(Some(key), m.clone(), &path, body.as_ref())
                .await;
            if allows(*role, action) {
                assert!(
                    !matches!(r.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
                        && !is_tenant_not_found(&r),
                    "{role} may {method} {template} ({action:?}) but got {}: {}",
                    r.status,
                    r.text
                );
                if method == "get" {
                    assert_eq!(
                        r.status,
                        StatusCode::OK,
                        "{role} {method} {template}: {}",
                        r.text
                    );
                }
            } else {
                r.assert_error(StatusCode::FORBIDDEN, "forbidden");
            }
        }
    }
    // The tenant under test survived and B's key still works on B.
    assert_eq!(
        app.get(&format!("/tenants/{a_id}")).await.status,
        StatusCode::OK
    );
    let r = app
        .request_as(
            Some(&b_owner),
            Method::GET,
            &format!("/tenants/{b_id}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn another_tenant_looks_exactly_like_a_missing_one() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let a = app.create_tenant("Alpha").await;
    let b = app.create_tenant("Beta").await;
    let key = a["apiKey"].as_str().unwrap();
    let other = app
        .request_as(
            Some(key),
            Method::GET,
            &format!("/tenants/{}", b["id"].as_str().unwrap()),
            None,
        )
        .await;
    let missing = app
        .get(&format!("/tenants/{}", tenant_core::TenantId::random()))
        .await;
    assert_eq!(other.status, missing.status);
    assert_eq!(other.body, missing.body);
    // A tenant credential may not suspend its own tenant, even as owner.
    app.request_as(
        Some(key),
        Method::PATCH,
        &format!("/tenants/{}", a["id"].as_str().unwrap()),
        Some(&json!({"status": "suspended"})),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
}
