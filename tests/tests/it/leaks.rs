//! Leak discipline: a full scenario with its logs captured; no credential, token or key appears
//! in any log line or any response body but the one response that issues it.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use moltbot_saas_tests::{TestApp, TestDb, TestResponse, captured_logs, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::json;

struct Scenario {
    app: TestApp,
    /// Every response but the ones that issue a key.
    seen: Vec<TestResponse>,
}

impl Scenario {
    async fn send(
        &mut self,
        token: Option<&str>,
        m: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> &TestResponse {
        let r = self.app.request_as(token, m, path, body.as_ref()).await;
        self.seen.push(r);
        self.seen.last().unwrap()
    }
}

#[tokio::test]
async fn no_secret_reaches_logs_or_responses() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let operator = app.operator_token.clone();
    let gateway = app.gateway_token.clone();
    let mut s = Scenario {
        app,
        seen: Vec::new(),
    };

    let t = s.app.create_tenant("Leaky").await;
    let id = t["id"].as_str().unwrap().to_owned();
    let owner = t["apiKey"].as_str().unwrap().to_owned();
    let keys = format!("/tenants/{id}/api-keys");
    let made = s
        .app
        .post(&keys, &json!({"name": "ci", "role": "admin"}))
        .await;
    let admin = made.body["apiKey"].as_str().unwrap().to_owned();
    let kid = made.body["id"].as_str().unwrap().to_owned();
    let rotated = s
        .app
        .request_as(
            Some(&owner),
            Method::POST,
            &format!("{keys}/{kid}/rotate"),
            Some(&json!({"overlapSeconds": 0})),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::CREATED, "{}", rotated.text);
    let successor = rotated.body["apiKey"].as_str().unwrap().to_owned();

    let discord = format!("FAKE.discord.{}", uuid::Uuid::new_v4().simple());
    let telegram = format!("123456789:LEAK{}", uuid::Uuid::new_v4().simple());
    let channels = format!("/tenants/{id}/channels");
    let r = s
        .send(
            Some(&successor),
            Method::POST,
            &channels,
            Some(json!({"channel": "discord", "credentials": {"token": discord, "applicationId": "900000001"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    s.send(
        Some(&owner),
        Method::POST,
        &channels,
        Some(json!({"channel": "telegram", "credentials": {"botToken": telegram}})),
    )
    .await;
    s.send(
        Some(&owner),
        Method::PATCH,
        &format!("{channels}/discord"),
        Some(json!({"credentials": {"token": format!("{discord}x")}})),
    )
    .await;
    s.send(Some(&owner), Method::GET, &channels, None).await;
    s.send(Some(&owner), Method::GET, &format!("/tenants/{id}"), None)
        .await;
    s.send(Some(&owner), Method::GET, &keys, None).await;
    s.send(Some(&owner), Method::GET, "/me", None).await;
    s.send(
        Some(&owner),
        Method::GET,
        &format!("/tenants/{id}/audit"),
        None,
    )
    .await;
    s.send(Some(&operator), Method::GET, "/audit", None).await;
    // Bad requests: secrets in the wrong places, revoked and retired keys, wrong tokens.
    s.send(
        Some(&owner),
        Method::POST,
        &keys,
        Some(json!({"name": owner.clone(), "role": discord.clone()})),
    )
    .await;
    s.send(
        Some(&owner),
        Method::POST,
        &channels,
        Some(json!({"channel": telegram.clone()})),
    )
    .await;
    s.send(
        Some(&owner),
        Method::PATCH,
        &format!("{channels}/telegram"),
        Some(json!({"credentials": {"botToken": 12}, "x": discord.clone()})),
    )
    .await;
    s.send(Some(&admin), Method::GET, &format!("/tenants/{id}"), None)
        .await;
    s.send(
        Some(&format!("{owner}x")),
        Method::GET,
        &format!("/tenants/{id}"),
        None,
    )
    .await;
    s.send(Some(&format!("{operator}x")), Method::GET, "/tenants", None)
        .await;
    s.send(
        Some(&gateway),
        Method::GET,
        &format!("/tenants/{id}/channels"),
        None,
    )
    .await;
    s.send(
        Some(&owner),
        Method::GET,
        &format!("/tenants/{id}/channels?token={discord}"),
        None,
    )
    .await;
    let r = s
        .send(
            Some(&operator),
            Method::GET,
            &format!("/tenants/{id}/config"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // (The config response is the one place a credential is meant to go: to the gateway.)
    s.seen.pop();
    s.send(Some(&owner), Method::DELETE, &format!("{keys}/{kid}"), None)
        .await;

    let secrets = [
        &owner, &admin, &successor, &operator, &gateway, &discord, &telegram,
    ];
    for r in &s.seen {
        for secret in secrets {
            assert!(
                !r.text.contains(secret.as_str()),
                "a response holds a secret: {}",
                r.text
            );
        }
    }
    // Everything this process logged, this scenario included (it logged something).
    let logs = captured_logs();
    assert!(logs.contains(&id), "the scenario's requests were logged");
    for secret in secrets {
        assert!(!logs.contains(secret.as_str()), "a secret was logged");
    }
    // Hashes of keys are not secrets, but are not logged either.
    let mut conn = db.connect();
    let tenant_id: tenant_core::TenantId = id.parse().unwrap();
    for k in tenant_store::api_keys::list(&mut conn, &tenant_id).unwrap() {
        assert!(!logs.contains(&k.key_hash));
    }
}

#[tokio::test]
async fn no_password_user_token_or_webhook_secret_reaches_logs_or_responses() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let operator = app.operator_token.clone();
    let mut s = Scenario {
        app,
        seen: Vec::new(),
    };
    let t = s
        .app
        .create_tenant_with(&json!({"name": "Leaky Users", "slug": "leaky-users"}))
        .await;
    let id = t["id"].as_str().unwrap().to_owned();
    let password = format!("pw-{}-long-enough", uuid::Uuid::new_v4().simple());
    let new_password = format!("pw2-{}-long-enough", uuid::Uuid::new_v4().simple());
    let users = format!("/tenants/{id}/users");

    // Responses that issue a secret are kept apart: they are meant to carry it.
    let r = s
        .app
        .post(
            &users,
            &json!({"email": "owner@leaky.test", "role": "owner", "password": password}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let invited = s
        .app
        .post(
            &users,
            &json!({"email": "new@leaky.test", "role": "member"}),
        )
        .await;
    let invite = invited.body["inviteToken"].as_str().unwrap().to_owned();
    let login =
        |email: &str, pw: &str| json!({"tenant": "leaky-users", "email": email, "password": pw});
    let issued = s
        .app
        .request_as(
            None,
            Method::POST,
            "/auth/login",
            Some(&login("owner@leaky.test", &password)),
        )
        .await;
    assert_eq!(issued.status, StatusCode::OK, "{}", issued.text);
    let access = issued.body["accessToken"].as_str().unwrap().to_owned();
    let refresh = issued.body["refreshToken"].as_str().unwrap().to_owned();
    let refreshed = s
        .app
        .request_as(
            None,
            Method::POST,
            "/auth/refresh",
            Some(&json!({"refreshToken": refresh})),
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text);
    let access2 = refreshed.body["accessToken"].as_str().unwrap().to_owned();
    let refresh2 = refreshed.body["refreshToken"].as_str().unwrap().to_owned();
    let hooks = format!("/tenants/{id}/webhooks");
    let hook = s
        .app
        .post(&hooks, &json!({"url": "https://hooks.example.com/leak"}))
        .await;
    assert_eq!(hook.status, StatusCode::CREATED, "{}", hook.text);
    let wid = hook.body["id"].as_str().unwrap().to_owned();
    let whsec = hook.body["secret"].as_str().unwrap().to_owned();
    let rotated = s
        .app
        .post(&format!("{hooks}/{wid}/rotate-secret"), &json!({}))
        .await;
    let whsec2 = rotated.body["secret"].as_str().unwrap().to_owned();

    // Everything else, including failures with secrets in the wrong places.
    s.send(
        None,
        Method::POST,
        "/auth/login",
        Some(login("owner@leaky.test", &new_password)),
    )
    .await;
    s.send(
        None,
        Method::POST,
        "/auth/login",
        Some(login("nobody@leaky.test", &password)),
    )
    .await;
    // A refresh token used twice: reuse revokes its family.
    s.send(
        None,
        Method::POST,
        "/auth/refresh",
        Some(json!({"refreshToken": refresh})),
    )
    .await;
    s.send(
        None,
        Method::POST,
        "/auth/accept-invite",
        Some(json!({"token": format!("{invite}x"), "password": password})),
    )
    .await;
    s.send(
        Some(&access2),
        Method::POST,
        "/auth/password",
        Some(json!({"currentPassword": new_password, "newPassword": password})),
    )
    .await;
    s.send(
        Some(&access2),
        Method::POST,
        "/auth/password",
        Some(json!({"currentPassword": password, "newPassword": "short"})),
    )
    .await;
    s.send(Some(&access2), Method::GET, "/me", None).await;
    s.send(Some(&format!("{access2}x")), Method::GET, "/me", None)
        .await;
    s.send(Some(&access2), Method::GET, &users, None).await;
    s.send(Some(&access2), Method::GET, &format!("{hooks}/{wid}"), None)
        .await;
    s.send(Some(&access2), Method::GET, &hooks, None).await;
    s.send(
        Some(&access2),
        Method::POST,
        &hooks,
        Some(json!({"url": whsec.clone(), "description": refresh2.clone()})),
    )
    .await;
    s.send(
        Some(&access2),
        Method::POST,
        &format!("{hooks}/{wid}/test"),
        Some(json!({})),
    )
    .await;
    s.send(
        Some(&operator),
        Method::GET,
        &format!("/tenants/{id}/audit"),
        None,
    )
    .await;
    s.send(
        Some(&access2),
        Method::POST,
        "/auth/logout",
        Some(json!({"refreshToken": refresh2})),
    )
    .await;

    let secrets = [
        &password,
        &new_password,
        &invite,
        &access,
        &refresh,
        &access2,
        &refresh2,
        &whsec,
        &whsec2,
    ];
    for r in &s.seen {
        for secret in secrets {
            assert!(
                !r.text.contains(secret.as_str()),
                "a response holds a secret: {}",
                r.text
            );
        }
    }
    let logs = captured_logs();
    assert!(logs.contains(&id), "the scenario's requests were logged");
    for secret in secrets {
        assert!(!logs.contains(secret.as_str()), "a secret was logged");
    }
}
