//! Every protected route refuses requests without a valid operator token, and writes nothing.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use moltbot_saas_tests::{TestApp, TestDb, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Every protected route, with a body that would succeed given a valid token.
fn protected_routes(id: &str) -> Vec<(Method, String, Option<Value>)> {
    let t = format!("/tenants/{id}");
    vec![
        (Method::GET, "/tenants".into(), None),
        (
            Method::POST,
            "/tenants".into(),
            Some(json!({"name": "Intruder"})),
        ),
        (Method::GET, t.clone(), None),
        (Method::PATCH, t.clone(), Some(json!({"name": "Hijacked"}))),
        (Method::DELETE, t.clone(), None),
        (Method::GET, format!("{t}/channels"), None),
        (
            Method::POST,
            format!("{t}/channels"),
            Some(json!({"channel": "discord"})),
        ),
        (Method::GET, format!("{t}/channels/telegram"), None),
        (
            Method::PATCH,
            format!("{t}/channels/telegram"),
            Some(json!({"enabled": false})),
        ),
        (Method::DELETE, format!("{t}/channels/telegram"), None),
        (Method::GET, "/openapi.json".into(), None),
    ]
}

async fn setup(db: &TestDb) -> (TestApp, String) {
    let app = spawn_app(db).await;
    let id = app.create_tenant("Acme").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post(
            &format!("/tenants/{id}/channels"),
            &json!({"channel": "telegram"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    (app, id)
}

#[tokio::test]
async fn no_token_is_401_on_every_protected_route() {
    let db = TestDb::new();
    let (app, id) = setup(&db).await;
    let before = db.row_counts();
    for (method, path, body) in protected_routes(&id) {
        let r = app
            .request_as(None, method.clone(), &path, body.as_ref())
            .await;
        r.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
        assert_eq!(
            r.headers
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer"),
            "{method} {path}"
        );
    }
    assert_eq!(db.row_counts(), before, "nothing written");
    // The token works on the same routes (so the 401s were about the token).
    assert_eq!(
        app.get(&format!("/tenants/{id}")).await.body["name"],
        "Acme"
    );
}

#[tokio::test]
async fn a_wrong_token_is_401_on_every_protected_route() {
    let db = TestDb::new();
    let (app, id) = setup(&db).await;
    let before = db.row_counts();
    // The right token with one character changed, a gateway-looking one, and a tenant API key
    // with one character changed (a real key works, scoped: see `access_matrix`).
    let mut near = app.operator_token.clone();
    near.pop();
    near.push('X');
    let mut api_key = app.create_tenant("Key Holder").await["apiKey"]
        .as_str()
        .unwrap()
        .to_owned();
    api_key.pop();
    api_key.push('!');
    let before_key_holder = db.row_counts();
    assert_eq!(before_key_holder.tenants, before.tenants + 1);
    for token in [
        near.as_str(),
        "msgw_not-a-real-gateway-token",
        api_key.as_str(),
    ] {
        for (method, path, body) in protected_routes(&id) {
            let r = app
                .request_as(Some(token), method.clone(), &path, body.as_ref())
                .await;
            r.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
        }
    }
    // Malformed Authorization headers.
    for header in [
        format!("Basic {}", app.operator_token),
        app.operator_token.clone(),
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
    ] {
        let r = app
            .request_with_authorization(&header, Method::GET, "/tenants")
            .await;
        r.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
        assert!(!r.text.contains(&app.operator_token));
    }
    assert_eq!(db.row_counts(), before_key_holder, "nothing written");
    // The scheme is case-insensitive.
    let r = app
        .request_with_authorization(
            &format!("bearer {}", app.operator_token),
            Method::GET,
            "/tenants",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}
