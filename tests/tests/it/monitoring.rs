//! Monitoring through real servers: `GET /metrics` (who may read it, the separate listener, off),
//! counters that move with requests, ingests, webhook deliveries and failures, the gauges read
//! from the store; Sentry reports of a panic and of a 5xx arriving at a loopback ingest endpoint
//! with their request ids and without any secret.
//!
//! The metrics recorder is process-wide and the tests of this binary run concurrently, so the
//! counters are checked as deltas that must be at least what this test did.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use moltbot_saas_tests::{
    Reply, TestApp, TestDb, WebhookReceiver, spawn_app, spawn_app_with, spawn_app_with_routes,
    test_settings,
};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tenant_core::Secret;

use crate::webhooks_support::{config, dispatcher, send_event, tenant_with_endpoint};

/// The sum of the samples of `name` whose labels include every one of `labels` (0 when none).
pub(crate) fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            let (n, rest) = match series.split_once('{') {
                Some((n, rest)) => (n, rest),
                None => (series, ""),
            };
            if n != name {
                return None;
            }
            labels
                .iter()
                .all(|(k, val)| rest.contains(&format!("{k}=\"{val}\"")))
                .then(|| v.parse::<f64>().ok())?
        })
        .sum()
}

async fn scrape(app: &TestApp) -> String {
    let r = app.get("/metrics").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.text
}

/// Polls `check` until it holds, for at most `secs` seconds.
async fn eventually(what: &str, secs: u64, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn metrics_need_the_operator_token_and_count_requests_by_route_template() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let tenant = app.create_tenant("Metered").await;
    let id = tenant["id"].as_str().unwrap().to_owned();
    let key = tenant["apiKey"].as_str().unwrap().to_owned();

    let r = app.request_as(None, Method::GET, "/metrics", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app
        .request_as(Some(&key), Method::GET, "/metrics", None)
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "tenants may not read metrics"
    );
    let r = app
        .request_as(Some(&app.gateway_token), Method::GET, "/metrics", None)
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "nor may the gateway (its token is no credential there)"
    );

    let before = scrape(&app).await;
    for _ in 0..3 {
        assert_eq!(
            app.get(&format!("/tenants/{id}")).await.status,
            StatusCode::OK
        );
    }
    assert_eq!(
        app.get("/tenants/not-a-uuid").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.get("/no/such/route").await.status,
        StatusCode::NOT_FOUND
    );
    let r = app.get("/metrics").await;
    assert_eq!(
        r.headers["content-type"].to_str().unwrap(),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let after = r.text;

    let delta = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    let route = [("method", "GET"), ("route", "/tenants/{id}")];
    let requests = "moltbot_saas_http_requests_total";
    assert!(delta(requests, &[route[0], route[1], ("status", "2xx")]) >= 3.0);
    assert!(delta(requests, &[route[0], route[1], ("status", "4xx")]) >= 1.0);
    assert!(delta(requests, &[("route", "unmatched"), ("status", "4xx")]) >= 1.0);
    assert!(delta("moltbot_saas_http_request_duration_seconds_count", &route) >= 4.0);
    assert!(
        value(
            &after,
            "moltbot_saas_http_request_duration_seconds_bucket",
            &[route[0], route[1], ("le", "+Inf")]
        ) >= 4.0
    );
    // No series names a tenant, a path or a key.
    assert!(!after.contains(&id), "a tenant id in the metrics");
    assert!(!after.contains("not-a-uuid") && !after.contains("/no/such/route"));
    assert!(!after.contains(&key[..12]));
    assert_eq!(
        value(
            &after,
            "moltbot_saas_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert!(value(&after, "process_resident_memory_bytes", &[]) > 1e6);
    assert!(value(&after, "process_open_fds", &[]) >= 1.0);
    assert!(value(&after, "moltbot_saas_db_pool_max_connections", &[]) >= 1.0);
    assert_eq!(value(&after, "moltbot_saas_db_available", &[]), 1.0);
    // The tenant create went through its group-commit path.
    assert!(
        value(
            &after,
            "moltbot_saas_write_batch_requests_count",
            &[("write_path", "tenant_create")]
        ) >= 1.0
    );
}

#[tokio::test]
async fn ingested_events_and_config_answers_are_counted() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let tenant = app.create_tenant("Chatty").await;
    let before = scrape(&app).await;
    let event = json!({
        "id": format!("evt-{}", uuid::Uuid::new_v4()),
        "type": "session.started",
        "accountId": tenant["accountId"],
        "data": {},
    });
    for _ in 0..2 {
        // The second is a duplicate of the first.
        let r = app
            .request_as(
                Some(&app.gateway_token),
                Method::POST,
                "/events",
                Some(&event),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    }
    let bad = json!({"id": "x", "type": "no.such.type", "accountId": tenant["accountId"]});
    let r = app
        .request_as(
            Some(&app.gateway_token),
            Method::POST,
            "/events",
            Some(&bad),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);

    let first = app
        .request_as(Some(&app.gateway_token), Method::GET, "/config", None)
        .await;
    assert_eq!(first.status, StatusCode::OK);
    let etag = first.headers["etag"].to_str().unwrap().to_owned();
    let r = app
        .client
        .get(format!("{}/config", app.address))
        .bearer_auth(&app.gateway_token)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);

    let after = scrape(&app).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    let ingested = "moltbot_saas_events_ingested_total";
    assert!(
        delta(
            ingested,
            &[("type", "session.started"), ("result", "accepted")]
        ) >= 1.0
    );
    assert!(
        delta(
            ingested,
            &[("type", "session.started"), ("result", "duplicate")]
        ) >= 1.0
    );
    assert!(
        delta(
            "moltbot_saas_http_requests_total",
            &[("method", "POST"), ("route", "/events"), ("status", "4xx")]
        ) >= 1.0,
        "the refused event counts as a failure"
    );
    assert!(
        delta(
            "moltbot_saas_write_batch_requests_count",
            &[("write_path", "ingest")]
        ) >= 1.0
    );
    assert!(
        delta(
            "moltbot_saas_write_batch_commit_duration_seconds_count",
            &[("write_path", "ingest")]
        ) >= 1.0
    );
    assert!(delta("moltbot_saas_gateway_config_not_modified_total", &[]) >= 1.0);
    assert!(delta("moltbot_saas_gateway_config_served_bytes_total", &[]) >= 2.0);
    assert!(value(&after, "moltbot_saas_gateway_config_renders_total", &[]) >= 1.0);
    assert!(
        value(
            &after,
            "moltbot_saas_gateway_config_document_bytes",
            &[("mode", "combined")]
        ) > 0.0
    );
}

#[tokio::test]
async fn webhook_deliveries_retries_dead_letters_and_queue_gauges_are_counted() {
    let db = TestDb::new();
    let mut settings = test_settings(&db);
    settings.webhooks.dispatcher = false;
    settings.webhooks.allowed_networks = vec!["127.0.0.1/32".parse().unwrap()];
    // This test alone refreshes the store gauges quickly (they are process-wide).
    settings.metrics.refresh = Duration::from_millis(100);
    let app = spawn_app_with(settings).await;
    let rx = WebhookReceiver::start().await;
    // Two attempts at most: 500, then 500 again, is a dead letter; the next event is delivered.
    rx.script([Reply::status(500), Reply::status(500)]);
    let (tenant, _hook) = tenant_with_endpoint(&app, &rx.url).await;
    let d = dispatcher(&db, config("0s,0s", Duration::from_secs(2), "127.0.0.1/32"));
    let before = scrape(&app).await;

    send_event(&app, &tenant, &format!("evt-{}", uuid::Uuid::new_v4())).await;
    let o = d.drain().await.unwrap();
    assert_eq!((o.retried, o.failed), (1, 1), "{o:?}");
    send_event(&app, &tenant, &format!("evt-{}", uuid::Uuid::new_v4())).await;
    assert_eq!(d.drain().await.unwrap().succeeded, 1);

    let after = scrape(&app).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    let deliveries = "moltbot_saas_webhook_deliveries_total";
    assert!(delta(deliveries, &[("outcome", "retried")]) >= 1.0);
    assert!(delta(deliveries, &[("outcome", "dead")]) >= 1.0);
    assert!(delta(deliveries, &[("outcome", "delivered")]) >= 1.0);
    assert!(
        delta(
            "moltbot_saas_webhook_attempt_failures_total",
            &[("reason", "http_error")]
        ) >= 2.0
    );
    assert!(delta("moltbot_saas_webhook_attempt_duration_seconds_count", &[]) >= 3.0);

    // The gauges read from the store: this database's dead letter and tenant.
    eventually("the store gauges show the dead letter", 20, async || {
        let text = scrape(&app).await;
        value(
            &text,
            "moltbot_saas_webhook_queue_deliveries",
            &[("state", "dead")],
        ) >= 1.0
            && value(
                &text,
                "moltbot_saas_tenants",
                &[("plan", "free"), ("status", "active")],
            ) >= 1.0
            && value(&text, "moltbot_saas_store_gauges_up", &[]) == 1.0
    })
    .await;
    rx.stop().await;
}

#[tokio::test]
async fn the_metrics_listener_needs_no_token_and_metrics_can_be_off() {
    let db = TestDb::new();
    let mut settings = test_settings(&db);
    settings.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
    let app = spawn_app_with(settings).await;
    let port = app.metrics_port.expect("a metrics listener");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("# TYPE moltbot_saas_http_requests_total counter"),
        "{text}"
    );
    // Only /metrics is served there.
    let r = client
        .get(format!("http://127.0.0.1:{port}/tenants"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let db = TestDb::new();
    let mut settings = test_settings(&db);
    settings.metrics.enabled = false;
    let off = spawn_app_with(settings).await;
    off.get("/metrics")
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

const PANIC_SECRET: &str = "sk_test_PanicSecret0123456789abcdef";

fn panic_route(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.route(
        "/test/panic",
        actix_web::web::get().to(|| async {
            panic!("forced panic for the Sentry test, holding {PANIC_SECRET}");
            #[allow(unreachable_code)]
            actix_web::HttpResponse::Ok().finish()
        }),
    );
}

#[tokio::test]
async fn sentry_receives_a_panic_and_a_5xx_with_request_ids_and_no_secrets() {
    let sentry = WebhookReceiver::start().await;
    let db = TestDb::new();
    let mut settings = test_settings(&db);
    settings.sentry.dsn = Some(Secret::new(format!(
        "http://publickey@127.0.0.1:{}/1",
        sentry.port
    )));
    let app = spawn_app_with_routes(settings, panic_route).await;

    // Secrets the server has seen: tokens, an API key, a channel credential.
    let tenant = app.create_tenant("Reported").await;
    let id = tenant["id"].as_str().unwrap().to_owned();
    let key = tenant["apiKey"].as_str().unwrap().to_owned();
    let telegram = format!("123456789:LEAK{}", uuid::Uuid::new_v4().simple());
    let r = app
        .post(
            &format!("/tenants/{id}/channels"),
            &json!({"channel": "telegram", "credentials": {"botToken": telegram}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    // A panic: answered 500 with its request id, and the server goes on.
    let r = app
        .client
        .get(format!("{}/test/panic", app.address))
        .bearer_auth(&app.operator_token)
        .header("x-request-id", "sentry-panic-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.headers()["x-request-id"], "sentry-panic-1");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "internal");
    assert_eq!(
        app.get(&format!("/tenants/{id}")).await.status,
        StatusCode::OK
    );

    // A 5xx from a real fault: the database refuses one event (on PostgreSQL at commit). Its
    // body carries a credential, which must not travel with the report.
    let mut conn = db.connect();
    {
        use diesel::connection::SimpleConnection;
        match db.backend() {
            "postgres" => conn.batch_execute(
                "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                   IF NEW.source_id = 'poison' THEN RAISE EXCEPTION 'poisoned'; END IF; \
                   RETURN NULL; END $$; \
                 CREATE CONSTRAINT TRIGGER poison AFTER INSERT ON events \
                   DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION poison();",
            ),
            _ => conn.batch_execute(
                "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.source_id = 'poison' \
                 BEGIN SELECT RAISE(ABORT, 'poisoned'); END;",
            ),
        }
        .unwrap();
    }
    let r = app
        .client
        .post(format!("{}/events", app.address))
        .bearer_auth(&app.gateway_token)
        .header("x-request-id", "sentry-5xx-1")
        .json(&json!({
            "id": "poison",
            "type": "message.received",
            "accountId": tenant["accountId"],
            "data": {"text": format!("my token is {telegram}")},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);

    let mut envelopes = Vec::new();
    eventually("both reports reach the Sentry endpoint", 20, async || {
        envelopes = sentry
            .requests()
            .into_iter()
            .map(|c| (c, String::new()))
            .map(|(c, _)| {
                let body = String::from_utf8_lossy(&c.body).into_owned();
                (c, body)
            })
            .collect::<Vec<_>>();
        let all: String = envelopes.iter().map(|(_, b)| b.as_str()).collect();
        all.contains("sentry-panic-1") && all.contains("sentry-5xx-1")
    })
    .await;

    let find = |rid: &str| {
        envelopes
            .iter()
            .find(|(_, b)| b.contains(rid))
            .map(|(c, b)| (c.clone(), b.clone()))
            .unwrap()
    };
    let (panic_req, panic_body) = find("sentry-panic-1");
    let (error_req, error_body) = find("sentry-5xx-1");
    for (req, body) in [(&panic_req, &panic_body), (&error_req, &error_body)] {
        assert!(
            req.header("x-sentry-auth").contains("sentry_key=publickey"),
            "{:?}",
            req.headers
        );
        // An envelope: a header line, an item header, the event.
        let event: serde_json::Value = body
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v.get("exception").is_some())
            .unwrap_or_else(|| panic!("no event in {body}"));
        assert_eq!(
            event["release"],
            format!("moltbot-saas@{}", env!("CARGO_PKG_VERSION"))
        );
        // Error is the default level, left out.
        assert!(event.get("level").is_none_or(|l| l == "error"), "{event}");
        assert!(event.get("request").is_none(), "no request data: {event}");
        for secret in [
            app.operator_token.as_str(),
            app.gateway_token.as_str(),
            key.as_str(),
            telegram.as_str(),
            "LEAK",
            PANIC_SECRET,
        ] {
            assert!(!body.contains(secret), "a secret reached Sentry: {body}");
        }
    }
    let panic_event = panic_body
        .lines()
        .find(|l| l.contains("sentry-panic-1"))
        .unwrap();
    assert!(panic_event.contains("\"type\":\"panic\""), "{panic_event}");
    assert!(
        panic_event.contains("forced panic for the Sentry test"),
        "{panic_event}"
    );
    assert!(panic_event.contains("[redacted]"), "{panic_event}");
    assert!(
        panic_event.contains("monitoring.rs:"),
        "the location: {panic_event}"
    );
    let error_event = error_body
        .lines()
        .find(|l| l.contains("sentry-5xx-1"))
        .unwrap();
    assert!(
        error_event.contains("\"route\":\"/events\""),
        "{error_event}"
    );
    assert!(
        error_event.contains("poisoned"),
        "the cause is reported: {error_event}"
    );
    assert!(
        error_event.contains("\"http.status_code\":\"500\""),
        "{error_event}"
    );
    sentry.stop().await;
}
