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
