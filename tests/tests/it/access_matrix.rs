//! The cross-tenant matrix, generated from `/openapi.json` so a new route cannot be forgotten:
//! every route × another tenant's API keys and user token → 404 (exactly like a missing tenant),
//! and × each role, as an API key and as a user's access token → allowed or 403 exactly as
//! `tenant_service::access` (the written matrix) says.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use moltbot_saas_tests::{TestApp, TestDb, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenant_core::Role;
use tenant_server::http::route_table::action_for;
use tenant_service::access::{Action, allows};

use crate::users_support::{create_user, tokens};

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch"];

/// The routes anyone may call: probes, the login flows that authenticate by their body, and
/// Stripe's webhook (authenticated by its signature).
const PUBLIC: &[&str] = &[
    "/health",
    "/ready",
    "/auth/login",
    "/auth/refresh",
    "/auth/accept-invite",
    "/billing/stripe/webhook",
];

/// Every documented (method, path template) but the public ones.
async fn documented_routes(app: &TestApp) -> Vec<(String, String)> {
    let doc = app.get("/openapi.json").await.body;
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if PUBLIC.contains(&path.as_str()) {
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

/// A user of `role` for tenant `id`, created by the operator; returns its access token.
async fn user_with_role(app: &TestApp, id: &str, role: Role) -> String {
    let email = format!("{role}-{}@tenant.test", &id[..8]);
    create_user(app, id, &email, role.as_str()).await;
    tokens(app, Some(id), &email).await.0
}

/// The ids of the resources one request may act on.
struct Ids {
    key: String,
    user: String,
    webhook: String,
    delivery: String,
}

/// Fresh resources for one request on tenant `id`: the telegram channel exists, and a new key,
/// a new (invited) user and — for webhook routes — a new webhook endpoint with one delivery can be
/// revoked, rotated, changed, replayed or deleted.
async fn prepare(app: &TestApp, id: &str, template: &str) -> Ids {
    let _ = app
        .post(
            &format!("/tenants/{id}/channels"),
            &json!({"channel": "telegram"}),
        )
        .await;
    let created = |r: moltbot_saas_tests::TestResponse, field: &str| {
        assert!(r.status.is_success(), "{}", r.text);
        r.body[field].as_str().unwrap().to_owned()
    };
    let key = created(
        app.post(
            &format!("/tenants/{id}/api-keys"),
            &json!({"name": "victim"}),
        )
        .await,
        "id",
    );
    let email = format!("victim-{}@tenant.test", uuid::Uuid::new_v4().simple());
    let user = created(
        app.post(
            &format!("/tenants/{id}/users"),
            &json!({"email": email, "role": "member"}),
        )
        .await,
        "id",
    );
    // A tenant has at most 50 endpoints: make one only where the route needs it (and
    // `discard` it after).
    let (mut webhook, mut delivery) = (String::new(), String::new());
    if template.contains("{wid}") {
        webhook = created(
            app.post(
                &format!("/tenants/{id}/webhooks"),
                &json!({"url": "https://hooks.example.com/victim"}),
            )
            .await,
            "id",
        );
        delivery = created(
            app.post(
                &format!("/tenants/{id}/webhooks/{webhook}/test"),
                &json!({}),
            )
            .await,
            "deliveryId",
        );
    }
    Ids {
        key,
        user,
        webhook,
        delivery,
    }
}

/// Removes the webhook endpoint `prepare` made, if any (it may be gone already).
async fn discard(app: &TestApp, id: &str, ids: &Ids) {
    if !ids.webhook.is_empty() {
        let r = app
            .request_as(
                Some(&app.operator_token),
                Method::DELETE,
                &format!("/tenants/{id}/webhooks/{}", ids.webhook),
                None,
            )
            .await;
        assert!(
            matches!(r.status, StatusCode::NO_CONTENT | StatusCode::NOT_FOUND),
            "{}",
            r.text
        );
    }
}

fn concrete(template: &str, id: &str, ids: &Ids) -> String {
    template
        .replace("{id}", id)
        .replace("{kind}", "telegram")
        .replace("{kid}", &ids.key)
        .replace("{uid}", &ids.user)
        .replace("{wid}", &ids.webhook)
        .replace("{did}", &ids.delivery)
}

fn body_for(method: &str, template: &str) -> Option<Value> {
    match (method, template) {
        ("post", "/tenants") => Some(json!({"name": "Intruder"})),
        ("post", t) if t.ends_with("/channels") => Some(json!({"channel": "discord"})),
        ("post", t) if t.ends_with("/api-keys") => Some(json!({"name": "new"})),
        ("post", t) if t.ends_with("/users") => Some(json!({
            "email": format!("new-{}@tenant.test", uuid::Uuid::new_v4().simple()),
            "role": "member",
        })),
        ("patch", t) if t.ends_with("{uid}") => Some(json!({"role": "member"})),
        ("post", t) if t.ends_with("/webhooks") => {
            Some(json!({"url": "https://hooks.example.com/new"}))
        }
        ("patch", t) if t.ends_with("{wid}") => Some(json!({"description": "changed"})),
        ("patch", t) if t.ends_with("{kind}") => Some(json!({"enabled": false})),
        ("patch", "/tenants/{id}") => Some(json!({"name": "Renamed"})),
        ("post", "/operators") => Some(json!({
            "email": format!("ops-{}@ops.test", uuid::Uuid::new_v4().simple()),
            "password": crate::users_support::PASSWORD,
        })),
        ("post" | "patch" | "put", _) => Some(json!({})),
        _ => None,
    }
}

/// Whether the matrix lets a credential of `role` do `action`: its own login session is only a
/// user's (an API key has none, and gets 403 from the route itself).
fn permitted(role: Role, action: Action, via_user: bool) -> bool {
    allows(role, action) && (action != Action::OwnSession || via_user)
}

fn is_tenant_not_found(r: &moltbot_saas_tests::TestResponse) -> bool {
    r.status == StatusCode::NOT_FOUND && r.error_message() == "tenant not found"
}

#[tokio::test]
async fn every_route_is_in_the_matrix_and_enforced() {
    let db = TestDb::new();
    // Billing on, against a fake Stripe, so its routes answer rather than 503.
    let stripe = moltbot_saas_tests::FakeStripe::start().await;
    let mut settings = moltbot_saas_tests::test_settings(&db);
    moltbot_saas_tests::stripe::enable_billing(&mut settings, &stripe.url);
    let app = moltbot_saas_tests::spawn_app_with(settings).await;
    let a = app.create_tenant("Alpha").await;
    let b = app.create_tenant("Beta").await;
    let (a_id, a_owner) = (a["id"].as_str().unwrap(), a["apiKey"].as_str().unwrap());
    let b_id = b["id"].as_str().unwrap();
    let b_owner = b["apiKey"].as_str().unwrap().to_owned();
    let b_member = key_with_role(&app, b_id, Role::Member).await;
    let b_user = user_with_role(&app, b_id, Role::Owner).await;
    // (role, credential, is a user's token)
    let a_credentials = [
        (Role::Owner, a_owner.to_owned(), false),
        (
            Role::Admin,
            key_with_role(&app, a_id, Role::Admin).await,
            false,
        ),
        (
            Role::Member,
            key_with_role(&app, a_id, Role::Member).await,
            false,
        ),
        (
            Role::Owner,
            user_with_role(&app, a_id, Role::Owner).await,
            true,
        ),
        (
            Role::Admin,
            user_with_role(&app, a_id, Role::Admin).await,
            true,
        ),
        (
            Role::Member,
            user_with_role(&app, a_id, Role::Member).await,
            true,
        ),
    ];
    let routes = documented_routes(&app).await;
    assert!(routes.len() >= 20, "{routes:?}");
    let missing: Vec<_> = routes
        .iter()
        .filter(|(m, p)| action_for(m, p).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "routes without an entry in tenant_server::http::route_table::ROUTES (the permission matrix): {missing:?}"
    );

    for (method, template) in &routes {
        let action = action_for(method, template).unwrap();
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let body = body_for(method, template);
        let tenant_scoped = template.starts_with("/tenants/{id}");

        // Another tenant's keys and user: 404 on A's resources, whatever their role; nothing
        // written.
        if tenant_scoped {
            let ids = prepare(&app, a_id, template).await;
            let path = concrete(template, a_id, &ids);
            let before = db.row_counts();
            for key in [&b_owner, &b_member, &b_user] {
                let r = app
                    .request_as(Some(key), m.clone(), &path, body.as_ref())
                    .await;
                r.assert_error(StatusCode::NOT_FOUND, "not_found");
                assert!(is_tenant_not_found(&r), "{method} {template}: {}", r.text);
            }
            assert_eq!(db.row_counts(), before, "{method} {template} wrote nothing");
            discard(&app, a_id, &ids).await;
        }

        // Each role on its own tenant, as a key and as a user: the matrix decides.
        for (role, key, via_user) in &a_credentials {
            let allowed = permitted(*role, action, *via_user);
            if method == "delete" && template == "/tenants/{id}" && allowed {
                continue; // would delete the tenant under test; no role may anyway
            }
            let ids = prepare(&app, a_id, template).await;
            let path = concrete(template, a_id, &ids);
            let r = app
                .request_as(Some(key), m.clone(), &path, body.as_ref())
                .await;
            discard(&app, a_id, &ids).await;
            let credential = if *via_user { "user" } else { "key" };
            if allowed {
                assert!(
                    !matches!(r.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
                        && !is_tenant_not_found(&r),
                    "{role} {credential} may {method} {template} ({action:?}) but got {}: {}",
                    r.status,
                    r.text
                );
                if method == "get" {
                    assert_eq!(
                        r.status,
                        StatusCode::OK,
                        "{role} {credential} {method} {template}: {}",
                        r.text
                    );
                }
            } else {
                assert_eq!(
                    r.status,
                    StatusCode::FORBIDDEN,
                    "{role} {credential} may not {method} {template}: {}",
                    r.text
                );
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

/// The routes a gateway's token may call (`tenant_service::access::Action::gateway_may`).
const GATEWAY_ROUTES: &[(&str, &str)] = &[
    ("get", "/config"),
    ("get", "/tenants/{id}/config"),
    ("post", "/events"),
    ("post", "/webhooks/message"),
    ("post", "/gateway/heartbeat"),
];

/// Every documented route × the built-in gateway's token and a fleet gateway's token: its own
/// routes are reached (whatever they answer then, never 401 or 403), every other route answers
/// 401 — a gateway token is no credential there.
#[tokio::test]
async fn a_gateway_token_is_no_credential_outside_its_own_routes() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let fleet = app
        .post(
            "/gateways",
            &json!({"name": "matrix", "kind": "shared", "capacity": 5}),
        )
        .await;
    assert_eq!(fleet.status, StatusCode::CREATED, "{}", fleet.text);
    let fleet_token = fleet.body["token"].as_str().unwrap().to_owned();
    let mut own = 0;
    for (method, template) in documented_routes(&app).await {
        let path = template
            .split('/')
            .map(|part| {
                if part == "{kind}" {
                    "telegram".to_owned()
                } else if part.starts_with('{') {
                    uuid::Uuid::new_v4().to_string()
                } else {
                    part.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let body = body_for(&method, &template);
        let allowed = GATEWAY_ROUTES.contains(&(method.as_str(), template.as_str()));
        own += usize::from(allowed);
        for token in [app.gateway_token.as_str(), fleet_token.as_str()] {
            let r = app
                .request_as(Some(token), m.clone(), &path, body.as_ref())
                .await;
            if allowed {
                assert!(
                    !matches!(r.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
                    "{method} {template}: a gateway's own route: {} {}",
                    r.status,
                    r.text
                );
            } else {
                assert_eq!(
                    r.status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {template}: {}",
                    r.text
                );
                r.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
            }
        }
    }
    assert_eq!(
        own,
        GATEWAY_ROUTES.len(),
        "every gateway route is documented"
    );
}
