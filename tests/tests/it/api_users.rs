//! `/tenants/{id}/users` and `/auth/accept-invite`: roles, invites, the last-owner rule, and a
//! tenant user's token against another tenant.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use moltbot_saas_tests::{TestDb, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tenant_store::audit;

use crate::users_support::{PASSWORD, create_user, login, tenant_with_owner, tokens};

#[tokio::test]
async fn owners_manage_users_and_keep_the_last_owner() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let (tenant_id, owner_id) = tenant_with_owner(&app, "acme").await;
    let users = format!("/tenants/{tenant_id}/users");
    let (owner, _) = tokens(&app, Some("acme"), "owner@acme.test").await;

    // Validation names every bad field; duplicates conflict.
    let r = app
        .request_as(
            Some(&owner),
            Method::POST,
            &users,
            Some(&json!({ "email": "nope", "role": "root", "password": "Xy7!pw" })),
        )
        .await;
    r.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.invalid_fields(), ["email", "role", "password"]);
    assert!(!r.text.contains("Xy7!pw"), "the password is never echoed");
    let body = json!({ "email": "Admin@Acme.test", "role": "admin", "password": PASSWORD });
    let r = app
        .request_as(Some(&owner), Method::POST, &users, Some(&body))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["email"], "admin@acme.test");
    assert!(r.body.get("inviteToken").is_none());
    assert!(!r.text.contains(PASSWORD));
    let admin_id = r.body["id"].as_str().unwrap().to_owned();
    app.request_as(Some(&owner), Method::POST, &users, Some(&body))
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");

    // Admins and members read but do not manage users.
    create_user(&app, &tenant_id, "member@acme.test", "member").await;
    let (admin, _) = tokens(&app, Some("acme"), "admin@acme.test").await;
    let (member, _) = tokens(&app, Some("acme"), "member@acme.test").await;
    for token in [&admin, &member] {
        let r = app.request_as(Some(token), Method::GET, &users, None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["users"].as_array().unwrap().len(), 3);
    }
    let r = app
        .request_as(
            Some(&admin),
            Method::PATCH,
            &format!("{users}/{owner_id}"),
            Some(&json!({ "role": "member" })),
        )
        .await;
    r.assert_error(StatusCode::FORBIDDEN, "forbidden");
    let r = app
        .request_as(
            Some(&member),
            Method::POST,
            &users,
            Some(&json!({ "email": "x@acme.test", "role": "owner" })),
        )
        .await;
    r.assert_error(StatusCode::FORBIDDEN, "forbidden");

    // Pagination.
    let r = app
        .request_as(Some(&owner), Method::GET, &format!("{users}?limit=2"), None)
        .await;
    assert_eq!(r.body["users"].as_array().unwrap().len(), 2);
    let cursor = r.body["nextCursor"].as_str().unwrap().to_owned();
    let r = app
        .request_as(
            Some(&owner),
            Method::GET,
            &format!("{users}?limit=2&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(r.body["users"].as_array().unwrap().len(), 1);
    assert!(r.body["nextCursor"].is_null());

    // The only owner can be neither demoted, disabled nor deleted …
    let owner_path = format!("{users}/{owner_id}");
    for body in [json!({ "role": "admin" }), json!({ "disabled": true })] {
        app.request_as(Some(&owner), Method::PATCH, &owner_path, Some(&body))
            .await
            .assert_error(StatusCode::CONFLICT, "conflict");
    }
    app.request_as(Some(&owner), Method::DELETE, &owner_path, None)
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    // … until there is another one.
    let admin_path = format!("{users}/{admin_id}");
    let r = app
        .request_as(
            Some(&owner),
            Method::PATCH,
            &admin_path,
            Some(&json!({ "role": "owner" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["role"], "owner");
    let r = app
        .request_as(Some(&owner), Method::DELETE, &owner_path, None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    app.get(&owner_path)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    login(&app, Some("acme"), "owner@acme.test", PASSWORD)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");

    let mut conn = db.connect();
    let events = audit::list_for_tenant(&mut conn, &tenant_id.parse().unwrap(), 100).unwrap();
    for action in ["user.created", "user.updated", "user.deleted"] {
        assert!(events.iter().any(|e| e.action == action), "{action}");
    }
}

#[tokio::test]
async fn invited_users_set_their_password_once() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let (tenant_id, _) = tenant_with_owner(&app, "acme").await;
    let r = app
        .post(
            &format!("/tenants/{tenant_id}/users"),
            &json!({ "email": "new@acme.test", "role": "member" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["invitePending"], true);
    let invite = r.body["inviteToken"].as_str().unwrap().to_owned();
    let uid = r.body["id"].as_str().unwrap().to_owned();
    let r = app.get(&format!("/tenants/{tenant_id}/users/{uid}")).await;
    assert!(!r.text.contains(&invite), "shown only once");

    // No password yet: logging in fails like any wrong password.
    login(&app, Some("acme"), "new@acme.test", PASSWORD)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    let accept = |token: &str, password: &str| json!({ "token": token, "password": password });
    let r = app
        .request_as(
            None,
            Method::POST,
            "/auth/accept-invite",
            Some(&accept(&invite, "short")),
        )
        .await;
    r.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let r = app
        .request_as(
            None,
            Method::POST,
            "/auth/accept-invite",
            Some(&accept(&invite, PASSWORD)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["accessToken"].is_string());
    app.request_as(
        None,
        Method::POST,
        "/auth/accept-invite",
        Some(&accept(&invite, PASSWORD)),
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED, "invalid_token");
    let (_, _) = tokens(&app, Some("acme"), "new@acme.test").await;
}

#[tokio::test]
async fn a_user_token_of_one_tenant_finds_nothing_of_another() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let (a, _) = tenant_with_owner(&app, "acme").await;
    let (b, b_owner) = tenant_with_owner(&app, "globex").await;
    let r = app
        .post(
            &format!("/tenants/{b}/channels"),
            &json!({ "channel": "telegram", "enabled": true }),
        )
        .await;
    let channel_created = r.status == StatusCode::CREATED;
    let (token, _) = tokens(&app, Some("acme"), "owner@acme.test").await;

    let routes: Vec<(Method, String)> = vec![
        (Method::GET, format!("/tenants/{b}")),
        (Method::PATCH, format!("/tenants/{b}")),
        (Method::DELETE, format!("/tenants/{b}")),
        (Method::GET, format!("/tenants/{b}/channels")),
        (Method::POST, format!("/tenants/{b}/channels")),
        (Method::GET, format!("/tenants/{b}/channels/telegram")),
        (Method::PATCH, format!("/tenants/{b}/channels/telegram")),
        (Method::DELETE, format!("/tenants/{b}/channels/telegram")),
        (Method::GET, format!("/tenants/{b}/config")),
        (Method::GET, format!("/tenants/{b}/users")),
        (Method::POST, format!("/tenants/{b}/users")),
        (Method::GET, format!("/tenants/{b}/users/{b_owner}")),
        (Method::PATCH, format!("/tenants/{b}/users/{b_owner}")),
        (Method::DELETE, format!("/tenants/{b}/users/{b_owner}")),
    ];
    for (method, path) in routes {
        let r = app
            .request_as(Some(&token), method.clone(), &path, Some(&json!({})))
            .await;
        r.assert_error(StatusCode::NOT_FOUND, "not_found");
        assert!(!r.text.contains("globex"), "{method} {path}: {}", r.text);
    }
    // Operator-only routes are refused outright.
    for path in ["/tenants", "/config", "/operators"] {
        let r = app.request_as(Some(&token), Method::GET, path, None).await;
        r.assert_error(StatusCode::FORBIDDEN, "forbidden");
    }
    // Nothing of tenant B changed, and A's own routes still work.
    let r = app.get(&format!("/tenants/{b}/users")).await;
    assert_eq!(r.body["users"].as_array().unwrap().len(), 1);
    if channel_created {
        assert_eq!(
            app.get(&format!("/tenants/{b}/channels/telegram"))
                .await
                .status,
            StatusCode::OK
        );
    }
    let r = app
        .request_as(Some(&token), Method::GET, &format!("/tenants/{a}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}
