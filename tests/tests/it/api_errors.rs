//! Every class of bad input: the right status and code, a field named, the error shape, and
//! nothing written to the database.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use moltbot_saas_tests::{TestApp, TestDb, TestResponse, spawn_app, spawn_app_with, test_settings};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A server with a tenant that has a telegram channel; returns the tenant id.
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

/// The routes that take a JSON body.
fn body_routes(id: &str) -> Vec<(Method, String)> {
    vec![
        (Method::POST, "/tenants".into()),
        (Method::PATCH, format!("/tenants/{id}")),
        (Method::POST, format!("/tenants/{id}/channels")),
        (Method::PATCH, format!("/tenants/{id}/channels/telegram")),
    ]
}

#[track_caller]
fn assert_422(r: &TestResponse, field: &str) {
    r.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(
        r.invalid_fields().iter().any(|f| f == field),
        "{field} named in {}",
        r.text
    );
    for f in r.body["error"]["details"]["fields"].as_array().unwrap() {
        assert!(f["code"].is_string() && f["message"].is_string(), "{f}");
    }
}

#[tokio::test]
async fn malformed_json_is_400_invalid_json() {
    let db = TestDb::new();
    let (app, id) = setup(&db).await;
    let before = db.row_counts();
    for (method, path) in body_routes(&id) {
        for body in [
            &b"{\"name\": "[..],
            b"not json",
            b"",
            b"{\"name\": \"a\"} trailing",
            b"{\"name\": \"a\"}{\"name\": \"b\"}",
        ] {
            let r = app
                .send_raw(method.clone(), &path, "application/json", body.to_vec())
                .await;
            r.assert_error(StatusCode::BAD_REQUEST, "invalid_json");
        }
    }
    assert_eq!(db.row_counts(), before, "nothing written");
}

#[tokio::test]
async fn wrong_types_are_400_naming_the_field_without_echoing_the_value() {
    let db = TestDb::new();
    let (app, id) = setup(&db).await;
    let before = db.row_counts();
    let secret = "123456789:AAHsecretLOOKINGtokenValue_xyz";
    let cases: Vec<(Method, String, Value, &str)> = vec![
        (Method::POST, "/tenants".into(), json!({"name": 5}), "name"),
        (
            Method::POST,
            "/tenants".into(),
            json!({"name": "Acme", "plan": ["pro"]}),
            "plan",
        ),
        (
            Method::PATCH,
            format!("/tenants/{id}"),
            json!({"status": true}),
            "status",
        ),
        (
            Method::POST,
            format!("/tenants/{id}/channels"),
            json!({"channel": "telegram", "enabled": secret}),
            "enabled",
        ),
        (
            Method::PATCH,
            format!("/tenants/{id}/channels/telegram"),
            json!({"enabled": secret}),
            "enabled",
        ),
        (
            Method::PATCH,
            format!("/tenants/{id}/channels/telegram"),
            json!({"displayName": {"token": secret}}),
            "displayName",
        ),
        (Method::POST, "/tenants".into(), json!([secret]), ""),
    ];
    for (method, path, body, field) in cases {
        let r = app.request(method.clone(), &path, Some(&body)).await;
        r.assert_error(StatusCode::BAD_REQUEST, "invalid_json");
        if !field.is_empty() {
            assert!(
                r.error_message().contains(field),
                "{method} {path}: message names {field}: {}",
                r.text
            );
            assert_eq!(r.body["error"]["details"]["field"], field, "{}", r.text);
        }
        assert!(!r.text.contains(secret), "the value is echoed: {}", r.text);
        assert!(
            !r.text.contains("AAHsecret"),
            "the value is echoed: {}",
            r.text
        );
    }
    // A credential of the wrong type is a validation error that does not echo it either.
    let r = app
        .patch(
            &format!("/tenants/{id}/channels/telegram"),
            &json!({"credentials": {"botToken": 123_456_789_012_345_u64}}),
        )
        .await;
    assert_422(&r, "credentials.botToken");
    assert!(!r.text.contains("123456789012345"), "{}", r.text);
    let r = app
        .patch(
            &format!("/tenants/{id}/channels/telegram"),
            &json!({"credentials": secret}),
        )
        .await;
    assert_422(&r, "credentials");
    assert!(!r.text.contains("AAHsecret"), "{}", r.text);
    assert_eq!(db.row_counts(), before, "nothing written");
}

#[tokio::test]
async fn unknown_fields_are_400_naming_the_field() {
    let db = TestDb::new();
    let (app, id) = setup(&db).await;
    let before = db.row_counts();
    let cases: Vec<(Method, String, Value, &str)> = vec![
        (
            Method::POST,
            "/tenants".into(),
            json!({"name": "Acme", "tenantId": "x"}),
            "tenantId",
        ),
        (
            Method::PATCH,
            format!("/tenants/{id}"),
            json!({"nmae": "Typo"}),
            "nmae",
        ),
        (
            Method::POST,
            format!("/tenants/{id}/channels"),
            json!({"channel": "discord", "kind": "discord"}),
            "kind",
        ),
        (
            Method::PATCH,
            format!("/tenants/{id}/channels/telegram"),
            json!({"botToken": "123:abc"}),
            "botToken",
        ),
    ];
    for (method, path, body, field) in cases {
        let r = app.request(method.clone(), &path, Some(&body)).await;
        r.assert_error(StatusCode::BAD_REQUEST, "invalid_json");
        assert!(
            r.error_message().contains(field),
            "{method} {path}: names {field}: {}",
            r.text
        );
    }
    assert_eq!(db.row_counts(), before, "nothing written");
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let db = TestDb::new();
    let mut settings = test_settings(&db);
    settings.max_body_bytes = 1024;
    let app = spawn_app_with(settings).await;
    let id = app.create_tenant("Acme").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = db.row_counts();
    let big = "x".repeat(2000);
    for (method, path, body) in [
        (Method::POST, "/tenants".to_owned(), json!({"name": big})),
        (
            Method::PATCH,
            format!("/tenants/{id}"),
            json!({"name": big}),
        ),
        (
            Method::POST,
            format!("/tenants/{id}/channels"),
            json!({"channel": "discord", "displayName": big}),
        ),
    ] {
        let r = app.request(method, &path, Some(&body)).await;
        r.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
        assert_eq!(r.body["error"]["details"]["limitBytes"], 1024);
    }
    assert_eq!(db.row_counts(), before, "nothing written");
    // A body under the limit still works on this server.
    let r = app.post("/tenants", &json!({"name": "Small"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn non_json_content_types_are_415() {
    let db = TestDb::new();
    let (app, id) = setup(&db).await;
    let before = db.row_counts();
    for (method, path) in body_routes(&id) {
        for content_type in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
        ] {
            let body = br#"{"name": "Acme", "channel": "discord"}"#.to_vec();
            let r = app
                .send_raw(method.clone(), &path, content_type, body)
                .await;
            r.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
        }
    }
    assert_eq!(db.row_counts(), before, "nothing written");
    // `application/json; charset=utf-8` is JSON.
    let r = app
        .send_raw(
            Method::POST,
            "/tenants",
            "application/json; charset=utf-8",
            br#"{"name": "Charset"}"#.to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

#[tokio::test]
async fn invalid_ids_and_kinds_in_the_path_are_400() {
    let db = TestDb::new();
    let (app, id) = setup(&db).await;
    let before = db.row_counts();
    for bad in ["not-a-uuid", "1234", "00000000-0000-0000-0000-00000000000g"] {
        let t = format!("/tenants/{bad}");
        let cases: Vec<(Method, String, Option<Value>)> = vec![
            (Method::GET, t.clone(), None),
            (Method::PATCH, t.clone(), Some(json!({"name": "x"}))),
            (Method::DELETE, t.clone(), None),
            (Method::GET, format!("{t}/channels"), None),
            (
                Method::POST,
                format!("{t}/channels"),
                Some(json!({"channel": "telegram"})),
            ),
            (Method::GET, format!("{t}/channels/telegram"), None),
            (
                Method::PATCH,
                format!("{t}/channels/telegram"),
                Some(json!({"enabled": true})),
            ),
            (Method::DELETE, format!("{t}/channels/telegram"), None),
        ];
        for (method, path, body) in cases {
            let r = app.request(method.clone(), &path, body.as_ref()).await;
            r.assert_error(StatusCode::BAD_REQUEST, "invalid_path");
            assert_eq!(r.body["error"]["details"]["field"], "id", "{method} {path}");
        }
    }
    for bad in ["icq", "Telegram", "sms"] {
        let path = format!("/tenants/{id}/channels/{bad}");
        for (method, body) in [
            (Method::GET, None),
            (Method::PATCH, Some(json!({"enabled": false}))),
            (Method::DELETE, None),
        ] {
            let r = app.request(method.clone(), &path, body.as_ref()).await;
            r.assert_error(StatusCode::BAD_REQUEST, "invalid_path");
            assert_eq!(
                r.body["error"]["details"]["field"], "kind",
                "{method} {path}"
            );
        }
    }
    // An unknown kind in a body is a validation error on `channel`.
    let r = app
        .post(
            &format!("/tenants/{id}/channels"),
            &json!({"channel": "icq"}),
        )
        .await;
    assert_422(&r, "channel");
    assert_eq!(db.row_counts(), before, "nothing written");
}

#[tokio::test]
async fn invalid_tenant_fields_are_422_naming_the_field() {
    let db = TestDb::new();
    let (app, id) = setup(&db).await;
    let before = db.row_counts();
    let too_long = "n".repeat(201);
    let cases: Vec<(Value, &str)> = vec![
        (json!({"name": ""}), "name"),
        (json!({"name": "   "}), "name"),
        (json!({"name": too_long}), "name"),
        (json!({"name": "Acme\u{0}Corp"}), "name"),
        (json!({"name": "Acme\nCorp"}), "name"),
        (json!({"name": "Acme\u{7f}"}), "name"),
        (json!({"name": "Acme", "slug": "Bad Slug"}), "slug"),
        (json!({"name": "Acme", "slug": "-acme"}), "slug"),
        (json!({"name": "Acme", "slug": "admin"}), "slug"),
        (json!({"name": "Acme", "slug": "a".repeat(64)}), "slug"),
        (json!({"name": "Acme", "slug": ""}), "slug"),
        (json!({"name": "Acme", "plan": "gold"}), "plan"),
        (json!({"name": "Acme", "plan": "Pro"}), "plan"),
    ];
    for (body, field) in &cases {
        let r = app.post("/tenants", body).await;
        assert_422(&r, field);
    }
    // Every problem of one body is reported at once.
    let r = app
        .post(
            "/tenants",
            &json!({"name": "", "slug": "Bad Slug", "plan": "gold"}),
        )
        .await;
    r.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.invalid_fields(), ["name", "slug", "plan"]);

    let path = format!("/tenants/{id}");
    for (body, field) in &cases {
        let r = app.patch(&path, body).await;
        assert_422(&r, field);
    }
    for status in ["deleted", "Active", ""] {
        let r = app.patch(&path, &json!({"status": status})).await;
        assert_422(&r, "status");
    }
    assert_eq!(db.row_counts(), before, "nothing written");
    let r = app.get(&path).await;
    assert_eq!(r.body["name"], "Acme");
    assert_eq!(r.body["status"], "active");
}

#[tokio::test]
async fn invalid_channel_fields_and_credentials_are_422_naming_the_field() {
    let db = TestDb::new();
    let (app, id) = setup(&db).await;
    let before = db.row_counts();
    let channels = format!("/tenants/{id}/channels");
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"channel": "discord", "credentials": {"token": "has space"}}),
            "credentials.token",
        ),
        (
            json!({"channel": "discord", "credentials": {"applicationId": "12ab"}}),
            "credentials.applicationId",
        ),
        (
            json!({"channel": "slack", "credentials": {"appToken": "xoxb-not-an-app-token"}}),
            "credentials.appToken",
        ),
        (
            json!({"channel": "slack", "credentials": {"botToken": "xapp-wrong-prefix"}}),
            "credentials.botToken",
        ),
        (
            json!({"channel": "slack", "credentials": {"mode": "rtm"}}),
            "credentials.mode",
        ),
        (
            json!({"channel": "signal", "credentials": {"account": "15551234567"}}),
            "credentials.account",
        ),
        (
            json!({"channel": "signal", "credentials": {"account": "+1555"}}),
            "credentials.account",
        ),
        (
            json!({"channel": "discord", "credentials": {"botToken": "x"}}),
            "credentials.botToken",
        ),
        (
            json!({"channel": "whatsapp", "credentials": {"token": "x"}}),
            "credentials.token",
        ),
        (
            json!({"channel": "discord", "credentials": {"token": null}}),
            "credentials.token",
        ),
        (
            json!({"channel": "discord", "credentials": ["token"]}),
            "credentials",
        ),
        (
            json!({"channel": "discord", "displayName": ""}),
            "displayName",
        ),
        (
            json!({"channel": "discord", "displayName": "d".repeat(101)}),
            "displayName",
        ),
        (
            json!({"channel": "discord", "displayName": "Bot\tName"}),
            "displayName",
        ),
    ];
    for (body, field) in &cases {
        let r = app.post(&channels, body).await;
        assert_422(&r, field);
    }
    // The telegram channel exists: its PATCH validates credentials the same way.
    let telegram = format!("{channels}/telegram");
    let no_colon = "123456789AAHnoColonSecretValue";
    for (body, field) in [
        (
            json!({"credentials": {"botToken": no_colon}}),
            "credentials.botToken",
        ),
        (
            json!({"credentials": {"botToken": "abc:def"}}),
            "credentials.botToken",
        ),
        (
            json!({"credentials": {"botToken": ""}}),
            "credentials.botToken",
        ),
        (
            json!({"credentials": {"token": "123:abc"}}),
            "credentials.token",
        ),
        (json!({"displayName": ""}), "displayName"),
    ] {
        let r = app.patch(&telegram, &body).await;
        assert_422(&r, field);
        assert!(!r.text.contains(no_colon), "{}", r.text);
    }
    assert_eq!(db.row_counts(), before, "nothing written");
    let r = app.get(&telegram).await;
    assert_eq!(r.body["state"], "awaiting_credentials", "unchanged");
    assert_eq!(r.body["credentials"]["botToken"]["set"], false);
}

#[tokio::test]
async fn bad_list_queries_are_4xx() {
    let db = TestDb::new();
    let (app, _) = setup(&db).await;
    for (query, status, code) in [
        (
            "limit=0",
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "limit=501",
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        ("limit=-1", StatusCode::BAD_REQUEST, "invalid_query"),
        ("limit=ten", StatusCode::BAD_REQUEST, "invalid_query"),
        (
            "cursor=garbage",
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "cursor=zz.1",
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "status=deleted",
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "plan=gold",
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        ("sort=name", StatusCode::BAD_REQUEST, "invalid_query"),
    ] {
        let r = app.get(&format!("/tenants?{query}")).await;
        r.assert_error(status, code);
        let named = query.split('=').next().unwrap();
        if status == StatusCode::UNPROCESSABLE_ENTITY {
            assert_eq!(r.invalid_fields(), [named], "{query}: {}", r.text);
        }
    }
    // A cursor this API returned works.
    app.create_tenant("Second").await;
    let r = app.get("/tenants?limit=1").await;
    let cursor = r.body["nextCursor"].as_str().unwrap().to_owned();
    let r = app.get(&format!("/tenants?limit=1&cursor={cursor}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["tenants"][0]["name"], "Second");
}
