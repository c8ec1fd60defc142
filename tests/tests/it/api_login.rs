//! Logging in with passwords: access and refresh tokens, reuse detection, logout, password
//! change, expired and forged tokens, operator users, and the brute-force throttle.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use moltbot_saas_tests::{TestDb, spawn_app, spawn_app_with, test_settings};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tenant_store::audit;

use crate::users_support::{PASSWORD, login, refresh, tenant_with_owner, tokens};

#[tokio::test]
async fn login_refresh_rotation_and_reuse_revokes_the_family() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let (tenant_id, _) = tenant_with_owner(&app, "acme").await;

    // By slug or by id, email case-insensitively.
    let r = login(&app, Some("acme"), "Owner@ACME.test", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["tokenType"], "Bearer");
    assert_eq!(r.body["expiresIn"], 900);
    assert_eq!(r.headers["cache-control"], "no-store");
    let (access, first) = tokens(&app, Some(&tenant_id), "owner@acme.test").await;
    assert!(first.starts_with("msrt_"));

    // The access token reaches the tenant's routes.
    let r = app
        .request_as(
            Some(&access),
            Method::GET,
            &format!("/tenants/{tenant_id}/users"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["users"][0]["email"], "owner@acme.test");
    assert!(!r.text.contains("argon2"), "no hash in responses");

    // Rotation: each refresh token works once and yields a new one.
    let r = refresh(&app, &first).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let second = r.body["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    let r = refresh(&app, &second).await;
    assert_eq!(r.status, StatusCode::OK);
    let third = r.body["refreshToken"].as_str().unwrap().to_owned();

    // Reusing an old one is theft: the whole family dies, the newest token too.
    refresh(&app, &first)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_token");
    refresh(&app, &third)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_token");
    refresh(&app, "msrt_not-a-token")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_token");

    let mut conn = db.connect();
    let events = audit::list_for_tenant(&mut conn, &tenant_id.parse().unwrap(), 50).unwrap();
    assert!(events.iter().any(|e| e.action == "auth.refresh_reused"));
    assert!(events.iter().any(|e| e.action == "auth.login"));
    // Only hashes are stored.
    let stored: Vec<String> = {
        use diesel::prelude::*;
        tenant_store::schema::refresh_tokens::table
            .select(tenant_store::schema::refresh_tokens::token_hash)
            .load(&mut conn)
            .unwrap()
    };
    assert!(!stored.is_empty());
    assert!(
        stored
            .iter()
            .all(|h| h.len() == 64 && !h.starts_with("msrt_"))
    );
}

#[tokio::test]
async fn logout_and_password_change_end_sessions() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    tenant_with_owner(&app, "acme").await;
    let (access, refresh_a) = tokens(&app, Some("acme"), "owner@acme.test").await;
    let (_, refresh_b) = tokens(&app, Some("acme"), "owner@acme.test").await;

    // Logout needs the access token and revokes that login's family only.
    let body = json!({ "refreshToken": refresh_a });
    let r = app
        .request_as(None, Method::POST, "/auth/logout", Some(&body))
        .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    let r = app
        .request_as(Some(&access), Method::POST, "/auth/logout", Some(&body))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    refresh(&app, &refresh_a)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_token");
    let r = refresh(&app, &refresh_b).await;
    assert_eq!(r.status, StatusCode::OK);
    let refresh_b = r.body["refreshToken"].as_str().unwrap().to_owned();

    // Password change: the current password is checked, the new one must meet the rules.
    let change =
        |current: &str, new: &str| json!({ "currentPassword": current, "newPassword": new });
    let r = app
        .request_as(
            Some(&access),
            Method::POST,
            "/auth/password",
            Some(&change(PASSWORD, "short")),
        )
        .await;
    r.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.invalid_fields(), ["newPassword"]);
    let new_password = "an entirely new passphrase";
    let r = app
        .request_as(
            Some(&access),
            Method::POST,
            "/auth/password",
            Some(&change("wrong password here", new_password)),
        )
        .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    let r = app
        .request_as(
            Some(&access),
            Method::POST,
            "/auth/password",
            Some(&change(PASSWORD, new_password)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(!r.text.contains(new_password));
    let fresh = r.body["refreshToken"].as_str().unwrap().to_owned();

    // Other sessions are gone; the new pair works; the old password does not.
    refresh(&app, &refresh_b)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_token");
    assert_eq!(refresh(&app, &fresh).await.status, StatusCode::OK);
    login(&app, Some("acme"), "owner@acme.test", PASSWORD)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    let r = login(&app, Some("acme"), "owner@acme.test", new_password).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn expired_and_wrongly_signed_access_tokens_are_refused() {
    let db = TestDb::new();
    let settings = test_settings(&db);
    let secret = settings
        .identity
        .jwt_secret
        .as_ref()
        .unwrap()
        .expose()
        .to_owned();
    let app = spawn_app_with(settings).await;
    let (tenant_id, user_id) = tenant_with_owner(&app, "acme").await;
    let path = format!("/tenants/{tenant_id}/users");
    let now = chrono::Utc::now().timestamp();
    let claims = |iat: i64, exp: i64| {
        json!({
            "sub": user_id, "tenant": tenant_id, "role": "owner", "kind": "user",
            "iat": iat, "exp": exp, "iss": "moltbot-saas", "aud": "moltbot-saas-api", "jti": "x",
        })
    };
    let sign = |claims: &serde_json::Value, key: &[u8]| {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(key).unwrap(),
        )
        .unwrap()
    };

    // A token forged the same way with the right secret works (the test is sound) …
    let good = sign(&claims(now, now + 600), secret.as_bytes());
    let r = app.request_as(Some(&good), Method::GET, &path, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // … expired, wrongly signed, wrong audience, or unsigned, it does not.
    let expired = sign(&claims(now - 7200, now - 3600), secret.as_bytes());
    let wrong_key = sign(
        &claims(now, now + 600),
        b"another secret of at least 32 bytes!!",
    );
    let mut wrong_aud = claims(now, now + 600);
    wrong_aud["aud"] = json!("someone-else");
    let wrong_aud = sign(&wrong_aud, secret.as_bytes());
    let mut parts: Vec<&str> = good.split('.').collect();
    parts[2] = "";
    let unsigned = parts.join(".");
    for token in [expired, wrong_key, wrong_aud, unsigned, "a.b.c".to_owned()] {
        let r = app.request_as(Some(&token), Method::GET, &path, None).await;
        r.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
}

#[tokio::test]
async fn failed_logins_are_throttled_without_revealing_accounts() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    tenant_with_owner(&app, "acme").await;

    // Unknown email and wrong password answer identically.
    let unknown = login(&app, Some("acme"), "nobody@acme.test", "some password 123").await;
    let wrong = login(&app, Some("acme"), "owner@acme.test", "some password 123").await;
    let unknown_tenant = login(&app, Some("nope"), "owner@acme.test", "some password 123").await;
    for r in [&unknown, &wrong, &unknown_tenant] {
        r.assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
        assert_eq!(r.text, unknown.text);
    }

    // Five failures in all lock the account, even against the right password; an unknown
    // account locks the same way.
    for _ in 0..4 {
        login(&app, Some("acme"), "owner@acme.test", "some password 123")
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
        login(&app, Some("acme"), "nobody@acme.test", "some password 123").await;
    }
    for email in ["owner@acme.test", "nobody@acme.test"] {
        let r = login(&app, Some("acme"), email, PASSWORD).await;
        r.assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
        let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=30).contains(&retry), "{retry}");
    }

    // Another account from the same address is not locked yet …
    let (_, _) = crate::users_support::tenant_with_owner(&app, "globex").await;
    let (_, _) = tokens(&app, Some("globex"), "owner@globex.test").await;
    // … until the address itself has failed too often.
    for i in 0..20 {
        let r = login(
            &app,
            Some("globex"),
            &format!("u{i}@globex.test"),
            "some password 123",
        )
        .await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
    }
    login(&app, Some("globex"), "owner@globex.test", PASSWORD)
        .await
        .assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");

    let mut conn = db.connect();
    let tenant: tenant_core::TenantId = app.get("/tenants").await.body["tenants"][0]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let events = audit::list_for_tenant(&mut conn, &tenant, 100).unwrap();
    let failed: Vec<_> = events
        .iter()
        .filter(|e| e.action == "auth.login_failed")
        .collect();
    assert!(!failed.is_empty());
    for e in failed {
        let details = e.details.as_deref().unwrap_or("");
        assert!(
            !details.contains("owner@") && !details.contains("some password"),
            "{details}"
        );
    }
}

#[tokio::test]
async fn operator_users_log_in_without_a_tenant_and_see_every_tenant() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let (tenant_id, _) = tenant_with_owner(&app, "acme").await;
    let r = app
        .post(
            "/operators",
            &json!({ "email": "ops@example.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert!(!r.text.contains(PASSWORD) && !r.text.contains("argon2"));
    app.post(
        "/operators",
        &json!({ "email": "OPS@example.com", "password": PASSWORD }),
    )
    .await
    .assert_error(StatusCode::CONFLICT, "conflict");

    let (access, _) = tokens(&app, None, "ops@example.com").await;
    for path in [
        "/tenants".to_owned(),
        format!("/tenants/{tenant_id}/users"),
        "/operators".into(),
    ] {
        let r = app
            .request_as(Some(&access), Method::GET, &path, None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
    }
    // A tenant owner is not an operator.
    let (owner, _) = tokens(&app, Some("acme"), "owner@acme.test").await;
    let r = app
        .request_as(Some(&owner), Method::GET, "/operators", None)
        .await;
    r.assert_error(StatusCode::FORBIDDEN, "forbidden");
    // A tenant user's email does not log in as an operator.
    login(&app, None, "owner@acme.test", PASSWORD)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
}
