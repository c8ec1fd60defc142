//! Helpers of the user and login tests: a tenant with an owner who can log in.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use moltbot_saas_tests::{TestApp, TestResponse};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A password that meets the rules.
pub const PASSWORD: &str = "correct horse battery staple";

/// A tenant (by slug) with an owner `owner@<slug>.test` whose password is [`PASSWORD`]; returns
/// the tenant id and the owner's user id.
pub async fn tenant_with_owner(app: &TestApp, slug: &str) -> (String, String) {
    let tenant = app
        .create_tenant_with(&json!({ "name": slug, "slug": slug }))
        .await;
    let id = tenant["id"].as_str().unwrap().to_owned();
    let user = create_user(app, &id, &format!("owner@{slug}.test"), "owner").await;
    (id, user["id"].as_str().unwrap().to_owned())
}

/// Creates a user with [`PASSWORD`] as the operator.
pub async fn create_user(app: &TestApp, tenant_id: &str, email: &str, role: &str) -> Value {
    let r = app
        .post(
            &format!("/tenants/{tenant_id}/users"),
            &json!({ "email": email, "role": role, "password": PASSWORD }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body
}

/// `POST /auth/login`.
pub async fn login(
    app: &TestApp,
    tenant: Option<&str>,
    email: &str,
    password: &str,
) -> TestResponse {
    let mut body = json!({ "email": email, "password": password });
    if let Some(t) = tenant {
        body["tenant"] = json!(t);
    }
    app.request_as(None, Method::POST, "/auth/login", Some(&body))
        .await
}

/// Logs in and returns (access token, refresh token).
pub async fn tokens(app: &TestApp, tenant: Option<&str>, email: &str) -> (String, String) {
    let r = login(app, tenant, email, PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    (
        r.body["accessToken"].as_str().unwrap().to_owned(),
        r.body["refreshToken"].as_str().unwrap().to_owned(),
    )
}

/// `POST /auth/refresh`.
pub async fn refresh(app: &TestApp, refresh_token: &str) -> TestResponse {
    app.request_as(
        None,
        Method::POST,
        "/auth/refresh",
        Some(&json!({ "refreshToken": refresh_token })),
    )
    .await
}
