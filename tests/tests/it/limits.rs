//! Plans, usage, quotas and rate limits through a real server (issue 15): each rule on its own,
//! in one process with the state in memory. The shared state (two processes, Redis) is in
//! `limits_processes.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use moltbot_saas_tests::{TestApp, TestDb, WebhookReceiver, spawn_app_with, test_settings};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenant_service::plans::Plans;
use tenant_service::usage;
use tenant_store::event_batch::{self, EventToStore};
use tenant_store::events::NewEvent;

/// A server whose metered requests are flushed every 50 ms, whose limits are cached briefly,
/// and whose dispatcher delivers to 127.0.0.1 quickly.
pub async fn app(db: &TestDb) -> TestApp {
    let mut settings = test_settings(db);
    settings.limits.usage_flush = Duration::from_millis(50);
    settings.limits.limits_cache_ttl = Duration::from_millis(100);
    settings.webhooks.allowed_networks = vec!["127.0.0.1/32".parse().unwrap()];
    settings.webhooks.poll_interval = Duration::from_millis(50);
    spawn_app_with(settings).await
}

/// Sets a tenant's overrides as the operator.
pub async fn set_limits(app: &TestApp, tenant: &str, body: Value) -> Value {
    let r = app.patch(&format!("/tenants/{tenant}/limits"), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

/// A message event for the tenant, posted as the gateway.
pub async fn message(app: &TestApp, account: &str, id: &str, kind: &str) -> StatusCode {
    app.request_as(
        Some(&app.gateway_token),
        Method::POST,
        "/events",
        Some(&json!({"id": id, "type": kind, "accountId": account, "data": {"text": "hi"}})),
    )
    .await
    .status
}

async fn usage(app: &TestApp, tenant: &str) -> Value {
    let r = app.get(&format!("/tenants/{tenant}/usage")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

/// Polls `check` every 50 ms until it holds or `secs` pass.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn plans_are_listed_and_a_new_tenant_has_used_nothing() {
    let db = TestDb::new();
    let app = app(&db).await;
    let r = app.get("/plans").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let names: Vec<&str> = r.body["plans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["free", "starter", "pro", "enterprise"]);
    assert_eq!(r.body["softLimitPercent"], 80);
    let free = &r.body["plans"][0]["limits"];
    for field in [
        "maxChannels",
        "maxWebhookEndpoints",
        "messagesPerMonth",
        "requestsPerMinutePerKey",
        "requestsPerMinutePerTenant",
        "requestBurst",
    ] {
        assert!(free[field].as_i64().unwrap() > 0, "{field}: {free}");
    }

    let tenant = app.create_tenant("Metered").await;
    let id = tenant["id"].as_str().unwrap();
    assert_eq!(tenant["quotaExceeded"], false);
    let u = usage(&app, id).await;
    assert_eq!(u["plan"], "free");
    assert_eq!(&u["limits"], free);
    assert_eq!(u["overrides"], json!({}));
    assert_eq!(u["current"]["messages"], 0);
    assert_eq!(u["current"]["quotaExceeded"], false);
    assert_eq!(
        u["current"]["softLimit"].as_i64().unwrap(),
        (free["messagesPerMonth"].as_i64().unwrap() * 80 + 99) / 100
    );
    assert_eq!(u["history"], json!([]));

    // A tenant's own key reads its usage and the plans; another tenant's usage is not found.
    let key = tenant["apiKey"].as_str().unwrap();
    let own = app
        .request_as(
            Some(key),
            Method::GET,
            &format!("/tenants/{id}/usage"),
            None,
        )
        .await;
    assert_eq!(own.status, 200, "{}", own.text);
    let other = app.create_tenant("Other").await;
    let r = app
        .request_as(
            Some(key),
            Method::GET,
            &format!("/tenants/{}/usage", other["id"].as_str().unwrap()),
            None,
        )
        .await;
    r.assert_error(StatusCode::NOT_FOUND, "not_found");
    let missing = uuid::Uuid::new_v4();
    app.get(&format!("/tenants/{missing}/usage"))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    app.stop().await;
}

#[tokio::test]
async fn limits_change_only_by_operators_with_every_bad_field_named() {
    let db = TestDb::new();
    let app = app(&db).await;
    let tenant = app.create_tenant("Deal").await;
    let id = tenant["id"].as_str().unwrap();
    let key = tenant["apiKey"].as_str().unwrap();
    let path = format!("/tenants/{id}/limits");

    // Not the tenant's to change, through either route.
    app.request_as(
        Some(key),
        Method::PATCH,
        &path,
        Some(&json!({"plan": "pro"})),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
    app.request_as(
        Some(key),
        Method::PATCH,
        &format!("/tenants/{id}"),
        Some(&json!({"plan": "pro"})),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");

    // Bad input: every field at fault named, nothing written.
    let r = app.patch(&path, &json!({"plan": "gold"})).await;
    r.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.invalid_fields(), ["plan"]);
    let r = app
        .patch(
            &path,
            &json!({"plan": "pro", "overrides": {"maxChannels": -1, "requestsPerMinutePerKey": 100_000_000_000_i64, "requestBurst": 0}}),
        )
        .await;
    r.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        r.invalid_fields(),
        [
            "overrides.maxChannels",
            "overrides.requestsPerMinutePerKey",
            "overrides.requestBurst"
        ]
    );
    let r = app.patch(&path, &json!({"overrides": {"seats": 3}})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = app.patch(&path, &json!({})).await;
    r.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        usage(&app, id).await["plan"],
        "free",
        "nothing half-written"
    );
    let missing = uuid::Uuid::new_v4();
    app.patch(
        &format!("/tenants/{missing}/limits"),
        &json!({"plan": "pro"}),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");

    // The operator's change, with its audit entry.
    let changed = set_limits(
        &app,
        id,
        json!({"plan": "enterprise", "overrides": {"maxChannels": 1000}}),
    )
    .await;
    assert_eq!(changed["plan"], "enterprise");
    assert_eq!(changed["limits"]["maxChannels"], 1000);
    assert_eq!(changed["overrides"], json!({"maxChannels": 1000}));
    let plans = app.get("/plans").await.body;
    assert_eq!(
        changed["limits"]["messagesPerMonth"],
        plans["plans"][3]["limits"]["messagesPerMonth"]
    );
    assert_eq!(
        app.get(&format!("/tenants/{id}")).await.body["plan"],
        "enterprise"
    );
    let audit = app.get(&format!("/tenants/{id}/audit")).await;
    let actions: Vec<&str> = audit.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"tenant.limits_changed"), "{actions:?}");
    // `{}` removes the overrides.
    let cleared = set_limits(&app, id, json!({"overrides": {}})).await;
    assert_eq!(cleared["overrides"], json!({}));
    assert_eq!(
        cleared["limits"]["maxChannels"],
        plans["plans"][3]["limits"]["maxChannels"]
    );
    app.stop().await;
}

#[tokio::test]
async fn channels_and_endpoints_beyond_the_plan_are_refused() {
    let db = TestDb::new();
    let app = app(&db).await;
    let tenant = app.create_tenant("Small").await;
    let id = tenant["id"].as_str().unwrap();
    set_limits(
        &app,
        id,
        json!({"overrides": {"maxChannels": 1, "maxWebhookEndpoints": 1}}),
    )
    .await;
    let channels = format!("/tenants/{id}/channels");
    let r = app.post(&channels, &json!({"channel": "telegram"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app.post(&channels, &json!({"channel": "discord"})).await;
    r.assert_error(StatusCode::FORBIDDEN, "plan_limit_reached");
    assert_eq!(
        r.body["error"]["details"],
        json!({"resource": "channels", "limit": 1})
    );

    let hooks = format!("/tenants/{id}/webhooks");
    let r = app
        .post(&hooks, &json!({"url": "http://127.0.0.1:9/a"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app
        .post(&hooks, &json!({"url": "http://127.0.0.1:9/b"}))
        .await;
    r.assert_error(StatusCode::FORBIDDEN, "plan_limit_reached");
    assert_eq!(
        r.body["error"]["details"],
        json!({"resource": "webhookEndpoints", "limit": 1})
    );
    let u = usage(&app, id).await;
    assert_eq!(u["current"]["channels"], 1);
    assert_eq!(u["current"]["webhookEndpoints"], 1);

    // A larger allowance lets the next one in.
    set_limits(&app, id, json!({"overrides": {"maxChannels": 2}})).await;
    let r = app.post(&channels, &json!({"channel": "discord"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    app.stop().await;
}

#[tokio::test]
async fn messages_count_once_per_event_id_and_api_requests_are_metered() {
    let db = TestDb::new();
    let app = app(&db).await;
    let tenant = app.create_tenant("Chatty").await;
    let id = tenant["id"].as_str().unwrap();
    let account = tenant["accountId"].as_str().unwrap();
    for i in 0..3 {
        assert_eq!(
            message(&app, account, &format!("r{i}"), "message.received").await,
            202
        );
    }
    for i in 0..2 {
        assert_eq!(
            message(&app, account, &format!("s{i}"), "message.sent").await,
            202
        );
    }
    // Duplicates, concurrently (one ingest batch) and again later, count nothing.
    let (a, b, c) = tokio::join!(
        message(&app, account, "r0", "message.received"),
        message(&app, account, "r1", "message.received"),
        message(&app, account, "r1", "message.received"),
    );
    assert_eq!([a, b, c], [202, 202, 202]);
    // Not a message.
    let r = app
        .request_as(
            Some(&app.gateway_token),
            Method::POST,
            "/events",
            Some(&json!({"id": "sess-1", "type": "session.started", "accountId": account})),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let u = usage(&app, id).await;
    assert_eq!(u["current"]["messages"], 5, "{u}");
    assert_eq!(u["history"][0]["period"], u["current"]["period"]);
    assert_eq!(u["history"][0]["messages"], 5);

    // API requests with the tenant's key are metered (the operator's are not).
    let key = tenant["apiKey"].as_str().unwrap();
    for _ in 0..7 {
        let r = app
            .request_as(Some(key), Method::GET, &format!("/tenants/{id}"), None)
            .await;
        assert_eq!(r.status, 200);
    }
    eventually(10, "7 metered API requests stored", || async {
        let u = usage(&app, id).await;
        u["history"][0]["apiRequests"] == 7 && u["current"]["apiRequests"] == 7
    })
    .await;
    app.stop().await;
}

/// The account ids in a combined config's telegram accounts.
pub fn telegram_accounts(config: &Value) -> Vec<String> {
    config["channels"]["telegram"]["accounts"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn quotas_warn_once_then_take_the_channels_out_until_the_plan_changes() {
    let db = TestDb::new();
    let app = app(&db).await;
    let receiver = WebhookReceiver::start().await;
    let tenant = app.create_tenant("Quota").await;
    let id = tenant["id"].as_str().unwrap();
    let account = tenant["accountId"].as_str().unwrap();
    let r = app
        .post(
            &format!("/tenants/{id}/webhooks"),
            &json!({"url": receiver.url, "eventTypes": ["usage.threshold", "usage.exceeded"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app
        .post(
            &format!("/tenants/{id}/channels"),
            &json!({"channel": "telegram", "credentials": {"botToken": "123456:quota-test-token"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    set_limits(&app, id, json!({"overrides": {"messagesPerMonth": 5}})).await;
    let config = || async {
        app.request_as(Some(&app.gateway_token), Method::GET, "/config", None)
            .await
            .body
    };
    assert_eq!(telegram_accounts(&config().await), [account]);

    // 80 % of 5 is 4: the fourth message sends the soft-limit event, once.
    for i in 0..4 {
        assert_eq!(
            message(&app, account, &format!("q{i}"), "message.received").await,
            202
        );
    }
    let types = |r: &WebhookReceiver| -> Vec<String> {
        r.requests()
            .iter()
            .map(|c| c.json()["type"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    eventually(10, "usage.threshold delivered", || async {
        types(&receiver) == ["usage.threshold"]
    })
    .await;
    let body = receiver.requests()[0].json();
    assert_eq!(body["data"]["tenantId"], id);
    assert_eq!(body["data"]["messages"], 4);
    assert_eq!(body["data"]["limit"], 5);
    assert_eq!(telegram_accounts(&config().await), [account], "still under");

    // The fifth reaches the limit: out of the config, marked, one usage.exceeded.
    assert_eq!(message(&app, account, "q4", "message.sent").await, 202);
    eventually(10, "usage.exceeded delivered", || async {
        types(&receiver) == ["usage.threshold", "usage.exceeded"]
    })
    .await;
    assert!(telegram_accounts(&config().await).is_empty());
    let own = app
        .request_as(
            Some(&app.gateway_token),
            Method::GET,
            &format!("/tenants/{id}/config"),
            None,
        )
        .await;
    assert_eq!(own.status, 200, "{}", own.text);
    assert!(telegram_accounts(&own.body).is_empty(), "{}", own.text);
    eventually(5, "quotaExceeded on the tenant", || async {
        app.get(&format!("/tenants/{id}")).await.body["quotaExceeded"] == true
    })
    .await;
    let u = usage(&app, id).await;
    assert_eq!(u["current"]["quotaExceeded"], true);
    assert_eq!(u["history"][0]["thresholdNotified"], true);
    assert_eq!(u["history"][0]["exceeded"], true);

    // More messages are still counted, but send nothing more.
    for i in 5..8 {
        assert_eq!(
            message(&app, account, &format!("q{i}"), "message.received").await,
            202
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(types(&receiver).len(), 2);
    assert_eq!(usage(&app, id).await["current"]["messages"], 8);

    // A plan change with room for them lets the channels back in.
    set_limits(&app, id, json!({"plan": "starter", "overrides": {}})).await;
    assert_eq!(telegram_accounts(&config().await), [account]);
    eventually(5, "quotaExceeded cleared", || async {
        app.get(&format!("/tenants/{id}")).await.body["quotaExceeded"] == false
    })
    .await;
    // A change that leaves them over the limit takes them out again at once.
    set_limits(&app, id, json!({"overrides": {"messagesPerMonth": 3}})).await;
    assert!(telegram_accounts(&config().await).is_empty());
    receiver.stop().await;
    app.stop().await;
}

/// Rate-limit fields of an answer.
pub fn rate_headers(r: &moltbot_saas_tests::TestResponse) -> (String, String) {
    let h = |n: &str| {
        r.headers
            .get(n)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    (h("ratelimit-policy"), h("ratelimit"))
}

#[tokio::test]
async fn requests_are_limited_per_key_and_per_tenant() {
    let db = TestDb::new();
    let app = app(&db).await;
    let tenant = app.create_tenant("Busy").await;
    let id = tenant["id"].as_str().unwrap();
    let key = tenant["apiKey"].as_str().unwrap().to_owned();
    // One request every 10 s per key, 3 at once; the tenant 5 at once.
    set_limits(
        &app,
        id,
        json!({"overrides": {"requestsPerMinutePerKey": 6, "requestsPerMinutePerTenant": 6, "requestBurst": 3}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let get = |k: String| {
        let app = &app;
        async move {
            app.request_as(Some(&k), Method::GET, &format!("/tenants/{id}"), None)
                .await
        }
    };
    for left in [2, 1, 0] {
        let r = get(key.clone()).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let (policy, state) = rate_headers(&r);
        assert_eq!(policy, r#""key";q=6;w=60, "tenant";q=6;w=60"#);
        assert!(
            state.starts_with(&format!("\"key\";r={left};t=")),
            "{state}"
        );
    }
    let r = get(key.clone()).await;
    r.assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry), "{retry}");
    assert!(rate_headers(&r).1.contains("r=0"), "{:?}", rate_headers(&r));
    assert_eq!(r.body["error"]["details"]["retryAfterSecs"], retry);

    // A second key of the tenant is refused by the tenant's limit.
    let r = app
        .post(
            &format!("/tenants/{id}/api-keys"),
            &json!({"name": "second"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let second = r.body["apiKey"].as_str().unwrap().to_owned();
    let r = get(second).await;
    r.assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert_eq!(r.body["error"]["details"]["policy"], "tenant");

    // Both refusals are counted in the metrics under the policy that refused (the tenant's:
    // the first request was over both, and the answer names the longer wait).
    let metrics = app.get("/metrics").await;
    assert_eq!(metrics.status, 200, "{}", metrics.text);
    let count = metrics
        .text
        .lines()
        .find_map(|l| {
            l.strip_prefix("moltbot_saas_rate_limited_requests_total{policy=\"tenant\"} ")
        })
        .and_then(|v| v.trim().parse::<u64>().ok());
    assert!(count.is_some_and(|n| n >= 2), "{count:?}");

    // Operators are not limited and get no rate-limit fields.
    for _ in 0..10 {
        let r = app.get(&format!("/tenants/{id}")).await;
        assert_eq!(r.status, 200);
        assert_eq!(rate_headers(&r).0, "");
    }
    // Refused requests are not metered: 3 passed.
    eventually(10, "3 metered requests", || async {
        usage(&app, id).await["current"]["apiRequests"] == 3
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn login_flows_are_limited_per_client_address() {
    let db = TestDb::new();
    let mut settings = test_settings(&db);
    settings.limits.login_quota.per_minute = 1;
    settings.limits.login_quota.burst = 3;
    let app = spawn_app_with(settings).await;
    let login = json!({"email": "nobody@example.com", "password": "wrong password 1"});
    for _ in 0..3 {
        let r = app
            .request_as(None, Method::POST, "/auth/login", Some(&login))
            .await;
        assert_eq!(r.status, 401, "{}", r.text);
        assert!(rate_headers(&r).0.starts_with("\"address\";q=1;w=60"));
    }
    for path in ["/auth/login", "/auth/refresh", "/auth/accept-invite"] {
        let r = app
            .request_as(None, Method::POST, path, Some(&json!({})))
            .await;
        r.assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
        assert_eq!(r.body["error"]["details"]["policy"], "address");
        assert!(r.headers.contains_key("retry-after"));
    }
    // Probes are never limited.
    assert_eq!(app.get("/health").await.status, 200);
    app.stop().await;
}

#[tokio::test]
async fn rate_limiting_can_be_turned_off() {
    let db = TestDb::new();
    let mut settings = test_settings(&db);
    settings.limits.rate_limit = false;
    let app = spawn_app_with(settings).await;
    let tenant = app.create_tenant("Free-for-all").await;
    let id = tenant["id"].as_str().unwrap();
    set_limits(
        &app,
        id,
        json!({"overrides": {"requestsPerMinutePerKey": 1, "requestBurst": 1}}),
    )
    .await;
    let key = tenant["apiKey"].as_str().unwrap();
    for _ in 0..5 {
        let r = app
            .request_as(Some(key), Method::GET, &format!("/tenants/{id}"), None)
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(rate_headers(&r).0, "");
    }
    let ready = app.get("/ready").await;
    assert_eq!(ready.body["rateLimits"]["store"], "off");
    app.stop().await;
}

/// The usage events of a tenant stored so far, sorted by type.
fn usage_events(db: &TestDb, tenant: &tenant_core::TenantId) -> Vec<(String, String)> {
    use diesel::prelude::*;
    use tenant_store::schema::events;
    let mut rows: Vec<(String, String)> = events::table
        .filter(events::tenant_id.eq(tenant.to_string()))
        .filter(events::source.eq("usage"))
        .select((events::event_type, events::payload))
        .load(&mut db.connect())
        .unwrap();
    rows.sort();
    rows
}

/// A message of `tenant` as the ingest batch stores it.
fn batch_item(tenant: &tenant_core::TenantId, source_id: &str) -> EventToStore {
    EventToStore {
        tenant_id: *tenant,
        event: NewEvent {
            id: uuid::Uuid::new_v4(),
            source: "gateway".into(),
            source_id: source_id.into(),
            event_type: "message.received".into(),
            payload: "{}".into(),
        },
        session: None,
        at: tenant_core::now(),
    }
}

#[test]
fn a_batch_crossing_both_limits_is_judged_once_from_the_counters_it_wrote() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let now = tenant_core::now;
    let new = |conn: &mut tenant_store::AnyConnection, name: &str| {
        let t = tenant_core::NewTenant::parse(name, None, None).unwrap();
        tenant_store::tenants::insert(conn, t, now()).unwrap().id
    };
    let (full, roomy) = (new(&mut conn, "Crosses"), new(&mut conn, "Roomy"));
    let five = tenant_store::limits::LimitOverrides {
        messages_per_month: Some(5),
        ..Default::default()
    };
    tenant_store::limits::save(&mut conn, &full, &five, now()).unwrap();
    let plans = Plans::default();
    let judge = |conn: &mut tenant_store::AnyConnection, items: &[EventToStore]| {
        let done = event_batch::store_many(conn, items).unwrap();
        let exceeded = usage::judge_counters(conn, &plans, done.counters, now()).unwrap();
        (
            exceeded,
            tenant_store::usage::history(conn, &full, 1).unwrap(),
        )
    };

    // One batch takes the tenant from 0 to 6 messages (two repeats in it count nothing): the
    // soft limit (4) and the limit (5) are crossed together, each judged once.
    let mut batch: Vec<EventToStore> = (0..6)
        .map(|i| batch_item(&full, &format!("m{i}")))
        .collect();
    batch.insert(2, batch_item(&full, "m0"));
    batch.push(batch_item(&full, "m5"));
    batch.push(batch_item(&roomy, "r0"));
    let (exceeded, rows) = judge(&mut conn, &batch);
    assert_eq!(exceeded, [full]);
    assert_eq!(rows[0].messages, 6);
    assert!(rows[0].threshold_notified_at.is_some() && rows[0].exceeded_at.is_some());
    let events = usage_events(&db, &full);
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["usage.exceeded", "usage.threshold"]);
    for (_, payload) in &events {
        let body: Value = serde_json::from_str(payload).unwrap();
        assert_eq!(body["data"]["messages"], 6, "{body}");
        assert_eq!(body["data"]["limit"], 5, "{body}");
    }
    let period = tenant_store::usage::period_of(now());
    assert!(
        tenant_store::tenants::find(&mut conn, &full)
            .unwrap()
            .quota_exceeded_in(&period)
    );
    assert!(
        usage_events(&db, &roomy).is_empty(),
        "1 of the free plan's messages"
    );

    // Duplicates only: no counter, nothing judged; a new message: counted, sends nothing more.
    let (exceeded, rows) = judge(&mut conn, &[batch_item(&full, "m3")]);
    assert!(exceeded.is_empty());
    assert_eq!(rows[0].messages, 6);
    let (exceeded, rows) = judge(&mut conn, &[batch_item(&full, "m6")]);
    assert!(exceeded.is_empty());
    assert_eq!(rows[0].messages, 7);
    assert_eq!(usage_events(&db, &full).len(), 2);

    // The plan changes (the hard-limit mark is cleared); the next message is judged again
    // from its batch's counter, which carries the cleared mark: exceeded once more.
    tenant_store::usage::clear_exceeded(&mut conn, &full, &period).unwrap();
    plans.cache.forget(&full);
    let (exceeded, _) = judge(&mut conn, &[batch_item(&full, "m7")]);
    assert_eq!(exceeded, [full]);
    let types: Vec<String> = usage_events(&db, &full)
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(
        types,
        ["usage.exceeded", "usage.exceeded", "usage.threshold"]
    );
}
