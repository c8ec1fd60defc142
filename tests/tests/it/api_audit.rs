//! The audit log over HTTP: who (operator, API key), what, from where; tenant-scoped and
//! operator-wide listings, paginated and filtered.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use moltbot_saas_tests::{TestDb, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn key_actions_are_audited_with_the_actor_and_request() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let t = app.create_tenant("Acme").await;
    let (id, owner) = (t["id"].as_str().unwrap(), t["apiKey"].as_str().unwrap());
    let owner_id = app
        .request_as(Some(owner), Method::GET, "/me", None)
        .await
        .body["actorId"]
        .as_str()
        .unwrap()
        .to_owned();
    let req = app
        .client
        .post(format!("{}/tenants/{id}/api-keys", app.address))
        .bearer_auth(owner)
        .header("x-request-id", "req-audit-1")
        .header("user-agent", "audit-test/1.0")
        .json(&json!({"name": "ci", "role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(req.status(), StatusCode::CREATED);
    let kid = req.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .request_as(
            Some(owner),
            Method::POST,
            &format!("/tenants/{id}/api-keys/{kid}/rotate"),
            Some(&json!({"overlapSeconds": 60})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = app
        .request_as(
            Some(owner),
            Method::DELETE,
            &format!("/tenants/{id}/api-keys/{kid}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);

    let audit = format!("/tenants/{id}/audit");
    let r = app.request_as(Some(owner), Method::GET, &audit, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let actions: Vec<&str> = r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    // Newest first.
    assert_eq!(actions.first(), Some(&"key.revoked"));
    let mut sorted = actions.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "key.created",
            "key.created",
            "key.created",
            "key.revoked",
            "key.rotated",
            "tenant.created"
        ]
    );

    // Filter by action and actor: the key's own creation request, with its metadata.
    let r = app
        .get(&format!(
            "{audit}?action=key.created&actorType=api_key&actorId={owner_id}"
        ))
        .await;
    let events = r.body["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{}", r.text); // the created key and the rotated successor
    let first = events.last().unwrap();
    assert_eq!(first["resourceType"], "api_key");
    assert_eq!(first["resourceId"], kid.as_str());
    assert_eq!(first["requestId"], "req-audit-1");
    assert_eq!(first["userAgent"], "audit-test/1.0");
    assert_eq!(first["clientAddr"], "127.0.0.1");
    assert_eq!(first["details"]["role"], "admin");
    let r = app
        .get(&format!("{audit}?resourceType=api_key&resourceId={kid}"))
        .await;
    assert_eq!(r.body["events"].as_array().unwrap().len(), 3, "{}", r.text);

    // Pagination walks every event once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor.map_or(String::new(), |c| format!("&cursor={c}"));
        let r = app.get(&format!("{audit}?limit=2{q}")).await;
        assert_eq!(r.status, StatusCode::OK);
        for e in r.body["events"].as_array().unwrap() {
            seen.push(e["id"].as_str().unwrap().to_owned());
        }
        cursor = r.body["nextCursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), actions.len());

    // Time range: nothing before the epoch of this test, everything after.
    let r = app
        .get(&format!("{audit}?until=2000-01-01T00:00:00Z"))
        .await;
    assert_eq!(r.body["events"].as_array().unwrap().len(), 0);
    let r = app
        .get(&format!("{audit}?since=2000-01-01T00:00:00Z"))
        .await;
    assert_eq!(r.body["events"].as_array().unwrap().len(), actions.len());
    app.get(&format!("{audit}?since=yesterday"))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_query");
}

#[tokio::test]
async fn the_operator_listing_spans_tenants_and_is_operator_only() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let a = app.create_tenant("Alpha").await;
    let b = app.create_tenant("Beta").await;
    let r = app.get("/audit?action=tenant.created").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let tenants: Vec<&str> = r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["tenantId"].as_str().unwrap())
        .collect();
    assert_eq!(
        tenants,
        [b["id"].as_str().unwrap(), a["id"].as_str().unwrap()]
    );
    let r = app
        .get(&format!("/audit?tenantId={}", a["id"].as_str().unwrap()))
        .await;
    assert!(
        r.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["tenantId"] == a["id"])
    );
    app.get("/audit?tenantId=nope")
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    app.request_as(a["apiKey"].as_str(), Method::GET, "/audit", None)
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    // A tenant's own listing never shows another tenant's events.
    let r = app
        .request_as(
            a["apiKey"].as_str(),
            Method::GET,
            &format!("/tenants/{}/audit", a["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert!(
        r.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["tenantId"] == a["id"])
    );
}
