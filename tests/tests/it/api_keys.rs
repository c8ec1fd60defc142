//! Tenant API keys: issued once, listed without secrets, authenticating as their tenant and
//! role, revoked at once, rotated with an overlap in which both keys work.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use moltbot_saas_tests::{TestApp, TestDb, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A tenant (id, owner key).
async fn tenant(app: &TestApp, name: &str) -> (String, String) {
    let t = app.create_tenant(name).await;
    (
        t["id"].as_str().unwrap().to_owned(),
        t["apiKey"].as_str().unwrap().to_owned(),
    )
}

async fn get_as(app: &TestApp, key: &str, path: &str) -> StatusCode {
    app.request_as(Some(key), Method::GET, path, None)
        .await
        .status
}

#[tokio::test]
async fn the_first_key_is_an_owner_key_and_me_says_so() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let (id, key) = tenant(&app, "Acme").await;
    let me = app.request_as(Some(&key), Method::GET, "/me", None).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["kind"], "tenant");
    assert_eq!(me.body["tenantId"], id.as_str());
    assert_eq!(me.body["role"], "owner");
    assert_eq!(me.body["actorType"], "api_key");
    assert_eq!(me.body["apiKey"]["name"], "default");
    assert!(key.starts_with(me.body["apiKey"]["prefix"].as_str().unwrap()));
    assert!(!me.text.contains(&key));
    let op = app.get("/me").await;
    assert_eq!(op.body["kind"], "operator");
    assert!(op.body["tenantId"].is_null());
    let gw = app
        .request_as(Some(&app.gateway_token), Method::GET, "/me", None)
        .await;
    assert_eq!(
        gw.status,
        StatusCode::UNAUTHORIZED,
        "gateways keep their allow-list (elsewhere their token is no credential)"
    );
}

#[tokio::test]
async fn create_list_revoke() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let (id, owner) = tenant(&app, "Acme").await;
    let keys = format!("/tenants/{id}/api-keys");
    let r = app
        .request_as(
            Some(&owner),
            Method::POST,
            &keys,
            Some(&json!({"name": " ci ", "role": "admin"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["name"], "ci");
    assert_eq!(r.body["role"], "admin");
    assert_eq!(r.body["status"], "active");
    let admin = r.body["apiKey"].as_str().unwrap().to_owned();
    let kid = r.body["id"].as_str().unwrap().to_owned();
    assert!(admin.starts_with("msk_live_") && admin != owner);
    assert_eq!(
        get_as(&app, &admin, &format!("/tenants/{id}")).await,
        StatusCode::OK
    );

    // The listing shows prefixes, never keys or hashes; it pages.
    let r = app.get(&format!("{keys}?limit=1")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["apiKeys"].as_array().unwrap().len(), 1);
    let cursor = r.body["nextCursor"].as_str().unwrap().to_owned();
    let r2 = app.get(&format!("{keys}?limit=1&cursor={cursor}")).await;
    assert_eq!(r2.body["apiKeys"][0]["id"], kid.as_str());
    assert!(r2.body.get("nextCursor").is_none());
    for text in [&r.text, &r2.text] {
        assert!(!text.contains(&owner) && !text.contains(&admin));
        assert!(!text.contains("keyHash") && !text.contains("key_hash"));
    }

    // Validation.
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "x", "role": "root"}), "role"),
        (
            json!({"name": "x", "expiresAt": "2000-01-01T00:00:00Z"}),
            "expiresAt",
        ),
    ] {
        let r = app.post(&keys, &body).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
        assert_eq!(r.invalid_fields(), vec![field.to_owned()]);
    }
    app.post(&keys, &json!({"name": "x", "extra": 1}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    app.delete(&format!("{keys}/not-a-uuid"))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_path");
    app.delete(&format!("{keys}/{}", uuid::Uuid::new_v4()))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");

    // Revocation works at once (this replica forgets its cached entry), and is idempotent.
    let r = app
        .request_as(Some(&owner), Method::DELETE, &format!("{keys}/{kid}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        get_as(&app, &admin, &format!("/tenants/{id}")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.delete(&format!("{keys}/{kid}")).await.status,
        StatusCode::NO_CONTENT
    );
    let listed = app.get(&keys).await.body;
    let revoked: Vec<&Value> = listed["apiKeys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["status"] == "revoked")
        .collect();
    assert_eq!(revoked.len(), 1);
    // The owner key was used, so its last use is recorded.
    assert!(listed["apiKeys"][0]["lastUsedAt"].is_string(), "{listed}");
}

#[tokio::test]
async fn rotation_keeps_the_old_key_for_the_overlap() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let (id, owner) = tenant(&app, "Acme").await;
    let keys = format!("/tenants/{id}/api-keys");
    let made = app
        .post(&keys, &json!({"name": "deploy", "role": "member"}))
        .await
        .body;
    let (old, kid) = (
        made["apiKey"].as_str().unwrap().to_owned(),
        made["id"].as_str().unwrap().to_owned(),
    );
    let me = format!("/tenants/{id}");
    assert_eq!(get_as(&app, &old, &me).await, StatusCode::OK);

    let rotate = format!("{keys}/{kid}/rotate");
    let r = app
        .request_as(Some(&owner), Method::POST, &rotate, Some(&json!({})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["name"], "deploy");
    assert_eq!(r.body["role"], "member");
    let new = r.body["apiKey"].as_str().unwrap().to_owned();
    let new_id = r.body["id"].as_str().unwrap().to_owned();
    // Both work during the overlap.
    assert_eq!(get_as(&app, &old, &me).await, StatusCode::OK);
    assert_eq!(get_as(&app, &new, &me).await, StatusCode::OK);
    // A rotated key cannot be rotated again; the overlap has bounds.
    app.post(&rotate, &json!({}))
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    let r = app
        .post(
            &format!("{keys}/{new_id}/rotate"),
            &json!({"overlapSeconds": 999_999_999}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);

    // Rotating with no overlap retires the old key at once.
    let r = app
        .post(
            &format!("{keys}/{new_id}/rotate"),
            &json!({"overlapSeconds": 0}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let newest = r.body["apiKey"].as_str().unwrap().to_owned();
    assert_eq!(get_as(&app, &new, &me).await, StatusCode::UNAUTHORIZED);
    assert_eq!(get_as(&app, &newest, &me).await, StatusCode::OK);
    let listed = app.get(&keys).await.body;
    let entry = listed["apiKeys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == new_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(entry["status"], "expired");
    assert_eq!(entry["replacedBy"], r.body["id"]);
}

#[tokio::test]
async fn expired_and_unknown_keys_are_401() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let (id, _) = tenant(&app, "Acme").await;
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let r = app
        .post(
            &format!("/tenants/{id}/api-keys"),
            &json!({"name": "short", "expiresAt": soon}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let short = r.body["apiKey"].as_str().unwrap().to_owned();
    let path = format!("/tenants/{id}");
    assert_eq!(get_as(&app, &short, &path).await, StatusCode::OK);
    // Wait out the expiry (checked against the cached entry too).
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = app.request_as(Some(&short), Method::GET, &path, None).await;
    r.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    let forged = format!("msk_live_{}", "A".repeat(43));
    app.request_as(Some(&forged), Method::GET, &path, None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn deleting_a_tenant_retires_its_keys() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let (id, owner) = tenant(&app, "Doomed").await;
    let path = format!("/tenants/{id}");
    assert_eq!(get_as(&app, &owner, &path).await, StatusCode::OK);
    assert_eq!(app.delete(&path).await.status, StatusCode::NO_CONTENT);
    assert_eq!(get_as(&app, &owner, &path).await, StatusCode::UNAUTHORIZED);
}
