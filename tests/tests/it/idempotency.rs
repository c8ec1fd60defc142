//! The `Idempotency-Key` header on every creating `POST`, over HTTP on both backends: each
//! create replays its first answer byte for byte with `Idempotent-Replayed: true` and creates
//! nothing again; another body with the key is 422, a malformed key 400, a key still running 409;
//! refused requests store nothing; callers do not share keys; keys expire; two servers on one
//! database honour each other's keys; answers holding secrets are sealed at rest.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use moltbot_saas_tests::{
    TestApp, TestDb, TestResponse, WebhookReceiver, spawn_app, spawn_app_with, test_settings,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenant_store::AnyConnection;
use tenant_store::schema::{idempotency_keys, tenants};

use crate::webhooks_support::{self, default_dispatcher, send_event, tenant_with_endpoint};

const REPLAYED: &str = "idempotent-replayed";

/// `POST path` as the operator with `Idempotency-Key: key`.
async fn post_keyed(app: &TestApp, path: &str, key: &str, body: &Value) -> TestResponse {
    post_keyed_as(app, &app.operator_token, path, key, body).await
}

async fn post_keyed_as(
    app: &TestApp,
    token: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> TestResponse {
    app.request_with_header(
        token,
        Method::POST,
        path,
        ("Idempotency-Key", key),
        Some(body),
    )
    .await
}

/// Asserts that `again` is `first` replayed: same status, `Location` and body bytes, marked.
#[track_caller]
fn assert_replayed(first: &TestResponse, again: &TestResponse) {
    assert!(first.status.is_success(), "{}", first.text);
    assert!(first.headers.get(REPLAYED).is_none());
    assert_eq!(again.status, first.status, "{}", again.text);
    assert_eq!(again.text, first.text);
    assert_eq!(again.headers.get("location"), first.headers.get("location"));
    assert_eq!(
        again.headers.get(REPLAYED).map(|v| v.to_str().unwrap()),
        Some("true")
    );
    assert_eq!(
        again.headers.get("content-type").unwrap(),
        "application/json"
    );
}

fn tenant_count(db: &TestDb) -> i64 {
    tenants::table
        .count()
        .get_result(&mut db.connect())
        .unwrap()
}

fn key_rows(db: &TestDb) -> i64 {
    idempotency_keys::table
        .count()
        .get_result(&mut db.connect())
        .unwrap()
}

#[tokio::test]
async fn every_creating_post_replays_its_first_answer_and_creates_once() {
    let db = TestDb::new();
    let app = webhooks_support::app(&db).await;
    let rx = WebhookReceiver::start().await;

    // Tenants (group commit).
    let body = json!({"name": "Once Corp"});
    let first = post_keyed(&app, "/tenants", "tenant-1", &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let again = post_keyed(&app, "/tenants", "tenant-1", &body).await;
    assert_replayed(&first, &again);
    assert_eq!(tenant_count(&db), 1);
    let tid = first.body["id"].as_str().unwrap().to_owned();
    // The replayed one-time key is the one that works.
    let key = again.body["apiKey"].as_str().unwrap();
    let me = app
        .request_as(Some(key), Method::GET, &format!("/tenants/{tid}"), None)
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);

    // Every other creating POST: path, body; each twice with one key, then the collection
    // holds one new item.
    let cases: Vec<(String, Value, String)> = vec![
        (
            format!("/tenants/{tid}/channels"),
            json!({"channel": "telegram", "credentials": {"botToken": "42:AAonceONLYtoken"}}),
            format!("/tenants/{tid}/channels"),
        ),
        (
            format!("/tenants/{tid}/users"),
            json!({"email": "invitee@example.com", "role": "member"}),
            format!("/tenants/{tid}/users"),
        ),
        (
            format!("/tenants/{tid}/api-keys"),
            json!({"name": "ci"}),
            format!("/tenants/{tid}/api-keys"),
        ),
        (
            format!("/tenants/{tid}/webhooks"),
            json!({"url": rx.url}),
            format!("/tenants/{tid}/webhooks"),
        ),
        (
            "/operators".to_owned(),
            json!({"email": "ops@example.com", "password": "correct horse battery staple 42"}),
            "/operators".to_owned(),
        ),
    ];
    for (path, body, list) in &cases {
        let before = app.get(list).await;
        assert_eq!(before.status, StatusCode::OK, "{}", before.text);
        let first = post_keyed(&app, path, "create-once", body).await;
        assert!(first.status.is_success(), "{path}: {}", first.text);
        let again = post_keyed(&app, path, "create-once", body).await;
        assert_replayed(&first, &again);
        let after = app.get(list).await;
        assert_eq!(
            count_items(&after.body),
            count_items(&before.body) + 1,
            "{path}: {}",
            after.text
        );
    }

    // Rotating an API key issues one successor, whatever the retries.
    let issued = app
        .post(&format!("/tenants/{tid}/api-keys"), &json!({"name": "rot"}))
        .await;
    let kid = issued.body["id"].as_str().unwrap();
    let rotate = format!("/tenants/{tid}/api-keys/{kid}/rotate");
    let first = post_keyed(&app, &rotate, "rotate-once", &json!({})).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let again = post_keyed(&app, &rotate, "rotate-once", &json!({})).await;
    assert_replayed(&first, &again);
    // Without the key, a second rotation is refused: the key was rotated once.
    app.post(&rotate, &json!({}))
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");

    // Rotating a webhook secret: one rotation, one new secret.
    let hooks = app.get(&format!("/tenants/{tid}/webhooks")).await;
    let wid = hooks.body["webhooks"][0]["id"].as_str().unwrap();
    let rotate = format!("/tenants/{tid}/webhooks/{wid}/rotate-secret");
    let first = post_keyed(&app, &rotate, "rotate-secret", &json!({})).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let again = post_keyed(&app, &rotate, "rotate-secret", &json!({})).await;
    assert_replayed(&first, &again);
    let now = app.get(&format!("/tenants/{tid}/webhooks/{wid}")).await;
    assert_eq!(
        now.body["previousSecretExpiresAt"],
        first.body["previousSecretExpiresAt"]
    );

    // Replaying a delivery: queued again once; a retry with the key gets the same 202, where a
    // second replay without it is refused (the delivery is pending).
    let (tenant, hook) = tenant_with_endpoint(&app, &rx.url).await;
    send_event(&app, &tenant, "evt-idem").await;
    let d = default_dispatcher(&db);
    assert_eq!(
        d.dispatch_due(chrono::Utc::now()).await.unwrap().succeeded,
        1
    );
    let base = format!(
        "/tenants/{}/webhooks/{}/deliveries",
        tenant["id"].as_str().unwrap(),
        hook["id"].as_str().unwrap()
    );
    let listed = app.get(&base).await;
    let did = listed.body["deliveries"][0]["id"].as_str().unwrap();
    let replay = format!("{base}/{did}/replay");
    let first = post_keyed(&app, &replay, "replay-once", &json!({})).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text);
    let again = post_keyed(&app, &replay, "replay-once", &json!({})).await;
    assert_replayed(&first, &again);
    app.post(&replay, &json!({}))
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    app.stop().await;
}

/// The items of a list answer (its one array field).
fn count_items(body: &Value) -> usize {
    body.as_object()
        .and_then(|o| o.values().find_map(Value::as_array))
        .map_or_else(|| panic!("no list in {body}"), Vec::len)
}

#[tokio::test]
async fn a_key_reused_for_another_body_is_422_and_a_malformed_key_400() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let first = post_keyed(&app, "/tenants", "k-1", &json!({"name": "First"})).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    post_keyed(&app, "/tenants", "k-1", &json!({"name": "Second"}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused");
    // A body that differs only in its bytes is another request too.
    post_keyed(
        &app,
        "/tenants",
        "k-1",
        &json!({"name": "First", "plan": "free"}),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused");
    assert_eq!(tenant_count(&db), 1);

    let long = "k".repeat(256);
    for bad in ["", "\"\"", long.as_str(), "tab\tinside", "\"a\"b\""] {
        let r = post_keyed(&app, "/tenants", bad, &json!({"name": "Bad Key"})).await;
        r.assert_error(StatusCode::BAD_REQUEST, "invalid_idempotency_key");
        assert_eq!(r.body["error"]["details"]["header"], "Idempotency-Key");
        assert!(!r.text.contains("tab\tinside"));
    }
    // Non-ASCII bytes in the header.
    let r = app
        .client
        .post(format!("{}/tenants", app.address))
        .bearer_auth(&app.operator_token)
        .header(
            "Idempotency-Key",
            reqwest::header::HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        )
        .json(&json!({"name": "Bad Key"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // 255 characters, and the draft's quoted form, are fine; the quoted form is the same key.
    let max = "m".repeat(255);
    let r = post_keyed(&app, "/tenants", &max, &json!({"name": "Long Key"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let quoted = post_keyed(&app, "/tenants", "\"k-1\"", &json!({"name": "First"})).await;
    assert_replayed(&first, &quoted);
    assert_eq!(tenant_count(&db), 2);
    app.stop().await;
}

#[tokio::test]
async fn a_refused_request_stores_nothing_and_its_key_can_be_retried() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    app.create_tenant_with(&json!({"name": "Taken", "slug": "taken"}))
        .await;
    // A conflict (409) and a validation error (422) are not stored: the key is free again.
    post_keyed(
        &app,
        "/tenants",
        "retry-me",
        &json!({"name": "Wants Taken", "slug": "taken"}),
    )
    .await
    .assert_error(StatusCode::CONFLICT, "conflict");
    post_keyed(&app, "/tenants", "retry-me", &json!({"name": ""}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(key_rows(&db), 0);
    let fixed = json!({"name": "Wants Taken", "slug": "free-one"});
    let r = post_keyed(&app, "/tenants", "retry-me", &fixed).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let again = post_keyed(&app, "/tenants", "retry-me", &fixed).await;
    assert_replayed(&r, &again);
    // Requests without a key store nothing.
    app.create_tenant("No Key").await;
    assert_eq!(key_rows(&db), 1);
    app.stop().await;
}

#[tokio::test]
async fn concurrent_requests_with_one_key_create_once() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let body = json!({"name": "Racing"});
    let answers = race(&[&app], 8, "/tenants", "race", &body).await;
    let created: Vec<&TestResponse> = answers
        .iter()
        .filter(|r| r.status == StatusCode::CREATED && r.headers.get(REPLAYED).is_none())
        .collect();
    assert_eq!(created.len(), 1, "{answers:#?}");
    for r in &answers {
        match r.status {
            StatusCode::CREATED => assert_eq!(r.text, created[0].text),
            StatusCode::CONFLICT => {
                r.assert_error(StatusCode::CONFLICT, "idempotency_key_in_flight");
                assert_eq!(r.headers.get("retry-after").unwrap(), "1");
            }
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    assert_eq!(tenant_count(&db), 1);
    // Once the first is done, a retry replays it.
    let again = post_keyed(&app, "/tenants", "race", &body).await;
    assert_replayed(created[0], &again);
    app.stop().await;
}

/// Sends `n` keyed `POST`s at once, spread over `apps` in turn; their answers in order.
async fn race(
    apps: &[&TestApp],
    n: usize,
    path: &str,
    key: &str,
    body: &Value,
) -> Vec<TestResponse> {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let app = apps[i % apps.len()];
        let req = app
            .client
            .post(format!("{}{path}", app.address))
            .bearer_auth(&app.operator_token)
            .header("Idempotency-Key", key)
            .json(body);
        set.spawn(async move {
            let resp = req.send().await.unwrap();
            let status = resp.status();
            let headers = resp.headers().clone();
            let text = resp.text().await.unwrap();
            (
                i,
                TestResponse {
                    status,
                    headers,
                    body: serde_json::from_str(&text).unwrap_or(Value::Null),
                    text,
                },
            )
        });
    }
    let mut answers = set.join_all().await;
    answers.sort_by_key(|(i, _)| *i);
    answers.into_iter().map(|(_, r)| r).collect()
}

#[tokio::test]
async fn callers_and_paths_do_not_share_keys() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let a = app.create_tenant("Alpha").await;
    let b = app.create_tenant("Beta").await;
    let (aid, bid) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let body = json!({"name": "same key"});
    // The operator and the tenant's own key, one key, one path: two keys issued.
    let by_operator = post_keyed(&app, &format!("/tenants/{aid}/api-keys"), "shared", &body).await;
    let by_tenant = post_keyed_as(
        &app,
        a["apiKey"].as_str().unwrap(),
        &format!("/tenants/{aid}/api-keys"),
        "shared",
        &body,
    )
    .await;
    for r in [&by_operator, &by_tenant] {
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        assert!(r.headers.get(REPLAYED).is_none());
    }
    assert_ne!(by_operator.body["id"], by_tenant.body["id"]);
    // One caller, one key, another path: another request, not a reuse.
    let other_path = post_keyed(&app, &format!("/tenants/{bid}/api-keys"), "shared", &body).await;
    assert_eq!(
        other_path.status,
        StatusCode::CREATED,
        "{}",
        other_path.text
    );
    assert!(other_path.headers.get(REPLAYED).is_none());
    assert_eq!(key_rows(&db), 3);
    app.stop().await;
}

#[tokio::test]
async fn keys_expire_and_the_purge_deletes_them() {
    let db = TestDb::new();
    let mut settings = test_settings(&db);
    settings.idempotency_ttl = Duration::from_secs(1);
    let app = spawn_app_with(settings).await;
    let body = json!({"name": "Short Memory"});
    let first = post_keyed(&app, "/tenants", "brief", &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let again = post_keyed(&app, "/tenants", "brief", &body).await;
    assert_replayed(&first, &again);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Expired: the key is new again, for any body.
    let later = post_keyed(&app, "/tenants", "brief", &json!({"name": "Other Now"})).await;
    assert_eq!(later.status, StatusCode::CREATED, "{}", later.text);
    assert!(later.headers.get(REPLAYED).is_none());
    assert_eq!(tenant_count(&db), 2);
    assert_eq!(key_rows(&db), 1);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let purged =
        tenant_store::idempotency::delete_expired(&mut db.connect(), tenant_core::now()).unwrap();
    assert_eq!(purged, 1);
    assert_eq!(key_rows(&db), 0);
    app.stop().await;
}

#[tokio::test]
async fn two_servers_on_one_database_honour_each_others_keys() {
    let db = TestDb::new();
    let one = spawn_app(&db).await;
    let mut settings = test_settings(&db);
    settings.admin_token = Some(tenant_core::Secret::new(one.operator_token.clone()));
    let two = spawn_app_with(settings).await;
    let body = json!({"name": "Twice Served"});
    let first = post_keyed(&one, "/tenants", "across", &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    // The retry lands on the other server: the same answer, nothing created.
    let again = post_keyed(&two, "/tenants", "across", &body).await;
    assert_replayed(&first, &again);
    post_keyed(&two, "/tenants", "across", &json!({"name": "Other"}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused");
    assert_eq!(tenant_count(&db), 1);

    // Both at once, several times each: one create; the others replay it or are told to retry.
    let body = json!({"name": "Raced Across"});
    let answers = race(&[&one, &two], 8, "/tenants", "raced-across", &body).await;
    let fresh: Vec<&TestResponse> = answers
        .iter()
        .filter(|r| r.status == StatusCode::CREATED && r.headers.get(REPLAYED).is_none())
        .collect();
    assert_eq!(fresh.len(), 1, "{answers:#?}");
    for r in &answers {
        if r.status == StatusCode::CREATED {
            assert_eq!(r.text, fresh[0].text);
        } else {
            r.assert_error(StatusCode::CONFLICT, "idempotency_key_in_flight");
        }
    }
    assert_eq!(tenant_count(&db), 2);
    let settled = post_keyed(&two, "/tenants", "raced-across", &body).await;
    assert_replayed(fresh[0], &settled);
    one.stop().await;
    two.stop().await;
}

#[tokio::test]
async fn answers_holding_secrets_are_sealed_at_rest() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let created = post_keyed(
        &app,
        "/tenants",
        "sealed",
        &json!({"name": "Sealed Answer"}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let tid = created.body["id"].as_str().unwrap();
    let issued = post_keyed(
        &app,
        &format!("/tenants/{tid}/api-keys"),
        "sealed",
        &json!({"name": "ci"}),
    )
    .await;
    let invited = post_keyed(
        &app,
        &format!("/tenants/{tid}/users"),
        "sealed",
        &json!({"email": "sealed@example.com", "role": "member"}),
    )
    .await;
    let channel = post_keyed(
        &app,
        &format!("/tenants/{tid}/channels"),
        "sealed",
        &json!({"channel": "telegram", "credentials": {"botToken": "77:AAneverINtheTABLE"}}),
    )
    .await;
    assert_eq!(channel.status, StatusCode::CREATED, "{}", channel.text);
    // A secret shown once is not for caches, the first time or replayed; other answers may be.
    let replayed = post_keyed(
        &app,
        "/tenants",
        "sealed",
        &json!({"name": "Sealed Answer"}),
    )
    .await;
    assert_replayed(&created, &replayed);
    for r in [&created, &issued, &invited, &replayed] {
        assert_eq!(r.headers["cache-control"], "no-store", "{}", r.text);
    }
    assert!(channel.headers.get("cache-control").is_none());
    let secrets = [
        created.body["apiKey"].as_str().unwrap().to_owned(),
        issued.body["apiKey"].as_str().unwrap().to_owned(),
        invited.body["inviteToken"].as_str().unwrap().to_owned(),
        "AAneverINtheTABLE".to_owned(),
    ];
    app.stop().await;

    let mut conn = db.connect();
    let rows: Vec<(String, String, bool)> = idempotency_keys::table
        .select((
            idempotency_keys::path,
            idempotency_keys::body,
            idempotency_keys::sealed,
        ))
        .load(&mut conn)
        .unwrap();
    assert_eq!(rows.len(), 4);
    for (path, body, sealed) in &rows {
        // The channel's answer has no secret (credentials are redacted): stored as it is.
        assert_eq!(*sealed, !path.ends_with("/channels"), "{path}");
        if *sealed {
            assert!(body.starts_with("v1.test."), "{path}: {body}");
        } else {
            assert!(body.starts_with('{'), "{path}: {body}");
        }
        for secret in &secrets {
            assert!(!body.contains(secret.as_str()), "{path}");
        }
    }
    if let AnyConnection::Sqlite(c) = &mut conn {
        c.batch_execute("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    }
    drop(conn);
    for (file, bytes) in db.sqlite_files() {
        for secret in &secrets {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds a secret in clear",
                file.display()
            );
        }
    }
}

/// Two control planes on one database are two processes: each has its own registry of running
/// keys, so both may look a key up before either committed. The second to commit finds the key
/// taken and its whole create rolls back — through the tenant batch's statement and through a
/// plain transaction alike — and its retry replays the first's answer.
#[tokio::test]
async fn a_key_taken_by_another_process_meanwhile_rolls_the_create_back() {
    use std::sync::Arc;

    use tenant_core::{NewChannel, NewTenant, Secret, Tenant};
    use tenant_service::ServiceError;
    use tenant_service::control_plane::open::OpenOptions;
    use tenant_service::idempotency::{Answer, Begin, IdempotencyKey, OnceRequest, Render};
    use tenant_service::principal::{ActorRef, Principal};
    use tenant_store::audit::AuditContext;

    let db = TestDb::new();
    let dir = std::env::temp_dir().join(format!("idem-cp-{}", uuid::Uuid::new_v4()));
    let open = || {
        let mut options = OpenOptions {
            data_dir: Some(dir.clone()),
            key_ring: Some(moltbot_saas_tests::test_keys()),
            api_key_secret: Some(Secret::new("idempotency-test-api-key-secret-0001")),
            ..OpenOptions::default()
        };
        options.identity.jwt_secret = Some(Secret::new("idempotency-test-jwt-secret-0123456789"));
        tenant_service::ControlPlane::open_with(db.url(), options)
    };
    let (one, two) = (open().unwrap(), open().unwrap());
    let operator = Principal::Operator {
        actor: ActorRef::ServiceToken(None),
    };
    let ctx = AuditContext::default;
    let request = |path: &str, body: &[u8]| {
        OnceRequest::new(
            &operator,
            "POST",
            path,
            IdempotencyKey::parse(b"meanwhile").unwrap(),
            body,
        )
    };
    fn run<T>(begin: Begin<T>) -> tenant_service::idempotency::Ticket<T> {
        match begin {
            Begin::Run(Some(ticket)) => ticket,
            Begin::Run(None) => panic!("no ticket"),
            Begin::Replay(_) => panic!("replayed before anything was stored"),
        }
    }

    // A tenant, through group commit.
    let render: Render<(Tenant, Secret)> = Arc::new(|(t, key): &(Tenant, Secret)| Answer {
        status: 201,
        location: None,
        body: format!(r#"{{"id":"{}","apiKey":"{}"}}"#, t.id, key.expose()).into_bytes(),
        secret: true,
    });
    let first = run(one
        .begin_once(Some(request("/tenants", b"{}")), render.clone())
        .await
        .unwrap());
    let second = run(two
        .begin_once(Some(request("/tenants", b"{}")), render.clone())
        .await
        .unwrap());
    let new = |slug: Option<&str>| NewTenant::parse("Meanwhile", slug, None).unwrap();
    let (tenant, key) = one
        .create_tenant(ctx(), new(None), Some(first))
        .await
        .unwrap();
    let err = two
        .create_tenant(ctx(), new(None), Some(second))
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::IdempotencyKeyInFlight), "{err}");
    assert_eq!(tenant_count(&db), 1);
    // An explicit slug, which the first create took: not "slug taken", but the key's answer.
    let path = "/tenants?explicit";
    let first = run(one
        .begin_once(Some(request(path, b"{}")), render.clone())
        .await
        .unwrap());
    let second = run(two
        .begin_once(Some(request(path, b"{}")), render.clone())
        .await
        .unwrap());
    one.create_tenant(ctx(), new(Some("explicit")), Some(first))
        .await
        .unwrap();
    let err = two
        .create_tenant(ctx(), new(Some("explicit")), Some(second))
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::IdempotencyKeyInFlight), "{err}");
    assert_eq!(tenant_count(&db), 2);
    match two
        .begin_once(Some(request("/tenants", b"{}")), render.clone())
        .await
        .unwrap()
    {
        Begin::Replay(answer) => {
            let expected = format!(r#"{{"id":"{}","apiKey":"{}"}}"#, tenant.id, key.expose());
            assert_eq!(answer.body, expected.into_bytes());
        }
        Begin::Run(_) => panic!("the key was not found"),
    }

    // A channel, through a plain transaction.
    let path = format!("/tenants/{}/channels", tenant.id);
    let render: Render<tenant_core::Channel> = Arc::new(|c: &tenant_core::Channel| Answer {
        status: 201,
        location: None,
        body: c.kind.to_string().into_bytes(),
        secret: false,
    });
    let first = run(one
        .begin_once(Some(request(&path, b"{}")), render.clone())
        .await
        .unwrap());
    let second = run(two
        .begin_once(Some(request(&path, b"{}")), render.clone())
        .await
        .unwrap());
    // Another kind each, so that only the key can collide.
    let channel = |kind: &str| NewChannel::parse(kind, None, None, None).unwrap();
    one.add_channel(ctx(), tenant.id, channel("discord"), Some(first))
        .await
        .unwrap();
    let err = two
        .add_channel(ctx(), tenant.id, channel("slack"), Some(second))
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::IdempotencyKeyInFlight), "{err}");
    assert_eq!(one.list_channels(tenant.id).await.unwrap().len(), 1);
    // The same kind, which the first create took: the key's answer, not "kind taken".
    let path = format!("/tenants/{}/channels?same-kind", tenant.id);
    let first = run(one
        .begin_once(Some(request(&path, b"{}")), render.clone())
        .await
        .unwrap());
    let second = run(two
        .begin_once(Some(request(&path, b"{}")), render.clone())
        .await
        .unwrap());
    one.add_channel(ctx(), tenant.id, channel("slack"), Some(first))
        .await
        .unwrap();
    let err = two
        .add_channel(ctx(), tenant.id, channel("slack"), Some(second))
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::IdempotencyKeyInFlight), "{err}");
    // Without a key, a taken kind is still a conflict.
    let err = two
        .add_channel(ctx(), tenant.id, channel("slack"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ServiceError::Store(tenant_store::StoreError::Conflict { .. })
        ),
        "{err}"
    );
    assert_eq!(one.list_channels(tenant.id).await.unwrap().len(), 2);
    drop((one, two));
    let _ = std::fs::remove_dir_all(&dir);
}
