//! Fair delivery across tenants (issue 26), with the server's own dispatcher and real receivers
//! on 127.0.0.1: an endpoint that hangs (accepts, never answers), one that answers after 2 s and
//! one that refuses connections never delay a healthy endpoint's deliveries; nothing is lost or
//! sent twice, with one dispatcher or two on one database; a backlog of 20,000 deliveries to one
//! tenant's slow endpoint does not delay another tenant's one delivery; the endpoint resource
//! shows each endpoint's circuit and queue.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use moltbot_saas_tests::{Reply, TestApp, TestDb, WebhookReceiver, spawn_app_with, test_settings};
use serde_json::{Value, json};
use tenant_store::AnyConnection;
use tenant_store::schema::{events, webhook_attempts, webhook_deliveries};
use uuid::Uuid;

use crate::webhooks_support::tenant_with_endpoint;

/// Per-request timeout of the test servers' dispatchers: the slow endpoint (2 s) answers in
/// time, the hanging one never does.
const TIMEOUT_MS: &str = "3000";

/// A server with its dispatcher on, as `serve` runs it, with short timeouts.
async fn server(db: &TestDb) -> TestApp {
    let mut settings = test_settings(db);
    settings.webhooks.dispatcher = true;
    settings.webhooks.allowed_networks = vec!["127.0.0.1/32".parse().unwrap()];
    settings.webhooks.poll_interval = Duration::from_millis(100);
    settings.webhooks.request_timeout = Duration::from_millis(TIMEOUT_MS.parse().unwrap());
    settings.webhooks.connect_timeout = Duration::from_secs(1);
    settings.webhooks.lease = Duration::from_secs(20);
    settings.db_pool_size = 8;
    spawn_app_with(settings).await
}

/// A URL on 127.0.0.1 where nothing listens: connections are refused.
fn refusing_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/hook")
}

/// Posts event `n` of `label` for the tenant as the gateway.
async fn post_event(app: &TestApp, tenant: &Value, label: &str, n: usize) {
    let r = app
        .request_as(
            Some(&app.gateway_token),
            reqwest::Method::POST,
            "/events",
            Some(&json!({
                "id": format!("{label}-{n}"),
                "type": "message.received",
                "accountId": tenant["accountId"],
                "data": {"n": n, "label": label},
            })),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
}

/// Waits (polling, up to `limit`) until `done` holds.
async fn wait_until(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The distinct `webhook-id`s a receiver got, asserting none came twice.
fn once_each(rx: &WebhookReceiver, what: &str) -> HashSet<String> {
    let requests = rx.requests();
    let ids: HashSet<String> = requests
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    assert_eq!(
        ids.len(),
        requests.len(),
        "{what}: a delivery was sent twice"
    );
    ids
}

/// How the deliveries of an endpoint stand: status → count.
fn statuses(db: &TestDb, endpoint: &Value) -> HashMap<String, i64> {
    let id = endpoint["id"].as_str().unwrap().to_owned();
    let mut conn = db.connect();
    let rows: Vec<(String, i64)> = webhook_deliveries::table
        .filter(webhook_deliveries::endpoint_id.eq(id))
        .group_by(webhook_deliveries::status)
        .select((webhook_deliveries::status, diesel::dsl::count_star()))
        .load(&mut conn)
        .unwrap();
    rows.into_iter().collect()
}

/// Attempts recorded for an endpoint's deliveries.
fn attempts(db: &TestDb, endpoint: &Value) -> i64 {
    let id = endpoint["id"].as_str().unwrap().to_owned();
    let mut conn = db.connect();
    webhook_attempts::table
        .inner_join(webhook_deliveries::table)
        .filter(webhook_deliveries::endpoint_id.eq(id))
        .count()
        .get_result(&mut conn)
        .unwrap()
}

/// The outcome and error of an endpoint's attempts that did not succeed.
fn failed_attempts(db: &TestDb, endpoint: &Value) -> Vec<(String, Option<String>, i64)> {
    let id = endpoint["id"].as_str().unwrap().to_owned();
    let mut conn = db.connect();
    webhook_attempts::table
        .inner_join(webhook_deliveries::table)
        .filter(webhook_deliveries::endpoint_id.eq(id))
        .filter(webhook_attempts::outcome.ne("success"))
        .select((
            webhook_attempts::outcome,
            webhook_attempts::error,
            webhook_attempts::latency_ms,
        ))
        .load(&mut conn)
        .unwrap()
}

/// The endpoint resource's delivery state.
async fn delivery_state(app: &TestApp, tenant: &Value, endpoint: &Value) -> Value {
    let r = app
        .get(&format!(
            "/tenants/{}/webhooks/{}",
            tenant["id"].as_str().unwrap(),
            endpoint["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["delivery"].clone()
}

struct Scene {
    tenants: Vec<(Value, Value)>,
    healthy: WebhookReceiver,
    slow: WebhookReceiver,
    hanging: WebhookReceiver,
    sent_at: HashMap<usize, Instant>,
}

const EVENTS: usize = 100;

/// Four tenants — hanging, slow, refusing, healthy — and 100 events each, interleaved.
async fn scene(app: &TestApp) -> Scene {
    let healthy = WebhookReceiver::start().await;
    healthy.set_default(Reply::status(204));
    let slow = WebhookReceiver::start().await;
    slow.set_default(Reply::status(204).delayed(Duration::from_secs(2)));
    let hanging = WebhookReceiver::start().await;
    hanging.set_default(Reply::status(204).delayed(Duration::from_secs(3600)));
    let mut tenants = Vec::new();
    for url in [&hanging.url, &slow.url, &refusing_url(), &healthy.url] {
        tenants.push(tenant_with_endpoint(app, url).await);
    }
    let mut sent_at = HashMap::new();
    for n in 0..EVENTS {
        for (i, (tenant, _)) in tenants.iter().enumerate() {
            let label = ["hanging", "slow", "refusing", "healthy"][i];
            if label == "healthy" {
                sent_at.insert(n, Instant::now());
            }
            post_event(app, tenant, label, n).await;
        }
    }
    Scene {
        tenants,
        healthy,
        slow,
        hanging,
        sent_at,
    }
}

/// Every healthy delivery arrived, once, each within a generous bound of its event; returns the
/// slowest.
async fn healthy_in_time(s: &Scene) -> Duration {
    wait_until(
        "the healthy endpoint has every delivery",
        Duration::from_secs(60),
        async || s.healthy.count() >= EVENTS,
    )
    .await;
    assert_eq!(once_each(&s.healthy, "healthy").len(), EVENTS);
    let mut worst = Duration::ZERO;
    for r in s.healthy.requests() {
        let n = r.json()["data"]["n"].as_u64().unwrap() as usize;
        worst = worst.max(r.received_at - s.sent_at[&n]);
    }
    eprintln!("healthy endpoint: slowest delivery {worst:?} after its event");
    assert!(
        worst <= Duration::from_secs(3),
        "a healthy delivery waited {worst:?} behind the others"
    );
    worst
}

/// Nothing lost: each endpoint has its 100 deliveries; the healthy ones all succeeded; what the
/// slow endpoint got, it got once, and every success was received; the hanging endpoint got no
/// request that was not recorded as an attempt (or is in flight).
fn nothing_lost(db: &TestDb, s: &Scene) {
    for (_, endpoint) in &s.tenants {
        let total: i64 = statuses(db, endpoint).values().sum();
        assert_eq!(total, EVENTS as i64, "every event has its delivery");
    }
    assert_eq!(
        statuses(db, &s.tenants[3].1).get("succeeded").copied(),
        Some(EVENTS as i64)
    );
    let slow_received = once_each(&s.slow, "slow").len() as i64;
    let slow_done = statuses(db, &s.tenants[1].1)
        .get("succeeded")
        .copied()
        .unwrap_or(0);
    assert!(slow_done <= slow_received, "{slow_done} > {slow_received}");
    assert!(
        attempts(db, &s.tenants[0].1) <= s.hanging.count() as i64,
        "an attempt was recorded that the hanging endpoint never got"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hanging_slow_and_refusing_endpoints_never_delay_a_healthy_one() {
    let db = TestDb::new();
    let app = server(&db).await;
    let s = scene(&app).await;
    healthy_in_time(&s).await;

    // The refusing and hanging endpoints' circuits open (5 failures in a row by default), and
    // the endpoint resource says so; the hanging endpoint never held more than a few requests.
    let (refusing_tenant, refusing) = &s.tenants[2];
    wait_until(
        "the refusing endpoint's circuit opens",
        Duration::from_secs(30),
        async || delivery_state(&app, refusing_tenant, refusing).await["circuit"] == "open",
    )
    .await;
    let (hanging_tenant, hanging) = &s.tenants[0];
    wait_until(
        "the hanging endpoint's circuit opens",
        Duration::from_secs(30),
        async || delivery_state(&app, hanging_tenant, hanging).await["circuit"] == "open",
    )
    .await;
    let state = delivery_state(&app, hanging_tenant, hanging).await;
    assert!(state["retryAt"].is_string(), "{state}");
    assert!(
        state["consecutiveFailures"].as_i64().unwrap() >= 5,
        "{state}"
    );
    assert!(state["pending"].as_i64().unwrap() > 0, "{state}");
    // At most the per-endpoint cap in flight at once: two rounds of 4 open the circuit (a
    // little more if a retry fell due first).
    assert!(
        s.hanging.count() <= 12,
        "{} requests to the hanging endpoint",
        s.hanging.count()
    );
    // The healthy endpoint's circuit stayed closed and its queue empties (its outcomes are
    // recorded in batches, a moment after the receiver got them).
    let (healthy_tenant, healthy) = &s.tenants[3];
    wait_until(
        "the healthy endpoint has nothing pending",
        Duration::from_secs(20),
        async || {
            let pending = delivery_state(&app, healthy_tenant, healthy).await["pending"] == 0;
            if !pending {
                // What a failure to drain would be about.
                eprintln!(
                    "healthy failed attempts: {:?}",
                    failed_attempts(&db, healthy)
                );
            }
            pending
        },
    )
    .await;
    let healthy_state = delivery_state(&app, healthy_tenant, healthy).await;
    assert_eq!(healthy_state["circuit"], "closed", "{healthy_state}");
    // The dashboard shows the same: an operator sees which endpoint's circuit is open.
    crate::ui_support::operator_user(&app, "ops@example.com").await;
    let mut browser = crate::ui_support::Browser::new(&app);
    browser.log_in("", "ops@example.com").await;
    let page = |tenant: &Value, endpoint: Option<&Value>| {
        let base = format!("/admin/tenants/{}/webhooks", tenant["id"].as_str().unwrap());
        match endpoint {
            Some(e) => format!("{base}/{}", e["id"].as_str().unwrap()),
            None => base,
        }
    };
    let list = browser.get(&page(hanging_tenant, None)).await;
    assert!(list.html.contains("circuit open"), "{}", list.html);
    let one = browser.get(&page(hanging_tenant, Some(hanging))).await;
    assert!(one.html.contains("circuit open"), "{}", one.html);
    assert!(one.html.contains("probed again"), "{}", one.html);
    let fine = browser.get(&page(healthy_tenant, Some(healthy))).await;
    assert!(fine.html.contains("circuit closed"), "{}", fine.html);
    assert_eq!(healthy_state["consecutiveFailures"], 0, "{healthy_state}");
    assert!(healthy_state["oldestDueAt"].is_null(), "{healthy_state}");

    app.stop().await;
    nothing_lost(&db, &s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_dispatcher_processes_share_fairly_and_send_nothing_twice() {
    let db = TestDb::new();
    let a = server(&db).await;
    let b = server(&db).await;
    let s = scene(&a).await;
    healthy_in_time(&s).await;
    // Let the slow endpoint's deliveries go on for a while under both dispatchers.
    tokio::time::sleep(Duration::from_secs(5)).await;
    a.stop().await;
    b.stop().await;
    // Each process sends at most 4 to the slow endpoint at once (answers take 2 s): more than 4
    // arriving within 2 s of one another means both dispatchers worked.
    let mut arrivals: Vec<Instant> = s.slow.requests().iter().map(|r| r.received_at).collect();
    arrivals.sort_unstable();
    let most_at_once = arrivals
        .iter()
        .map(|t| {
            arrivals
                .iter()
                .filter(|u| **u >= *t && **u - *t < Duration::from_millis(1900))
                .count()
        })
        .max()
        .unwrap_or(0);
    assert!(
        most_at_once > 4,
        "only {most_at_once} slow requests at once"
    );
    assert!(
        most_at_once <= 8,
        "{most_at_once} slow requests at once: a cap was exceeded"
    );
    nothing_lost(&db, &s);
}

/// Inserts `n` pending deliveries for the endpoint, due now, straight into the store.
fn backlog(db: &TestDb, tenant: &Value, endpoint: &Value, n: usize) {
    enqueue_due(
        db,
        tenant["id"].as_str().unwrap(),
        endpoint["id"].as_str().unwrap(),
        n,
        Utc::now().naive_utc(),
    );
}

/// Inserts `n` pending deliveries for the endpoint, due at `now`, in one transaction.
fn enqueue_due(db: &TestDb, tenant_id: &str, endpoint_id: &str, n: usize, now: NaiveDateTime) {
    let mut conn = db.connect();
    conn.transaction::<_, diesel::result::Error, _>(|c| {
        for chunk in 0..n.div_ceil(1000) {
            let ids: Vec<String> = (0..1000.min(n - chunk * 1000))
                .map(|_| Uuid::new_v4().to_string())
                .collect();
            let evs: Vec<_> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    (
                        events::id.eq(id.clone()),
                        events::tenant_id.eq(tenant_id),
                        events::source.eq("backlog"),
                        events::source_id.eq(format!("backlog-{id}-{chunk}-{i}")),
                        events::event_type.eq("message.received"),
                        events::payload.eq(r#"{"data":{},"type":"message.received"}"#),
                        events::created_at.eq(now),
                    )
                })
                .collect();
            macro_rules! insert {
                ($table:expr, $rows:expr) => {
                    match c {
                        AnyConnection::Postgresql(pg) => {
                            diesel::insert_into($table).values($rows).execute(pg)?
                        }
                        AnyConnection::Sqlite(lite) => {
                            diesel::insert_into($table).values($rows).execute(lite)?
                        }
                    }
                };
            }
            insert!(events::table, &evs);
            let ds: Vec<_> = ids
                .iter()
                .map(|id| {
                    (
                        webhook_deliveries::id.eq(Uuid::new_v4().to_string()),
                        webhook_deliveries::tenant_id.eq(tenant_id),
                        webhook_deliveries::endpoint_id.eq(endpoint_id),
                        webhook_deliveries::event_id.eq(id.clone()),
                        webhook_deliveries::status.eq("pending"),
                        webhook_deliveries::attempts.eq(0),
                        webhook_deliveries::next_attempt_at.eq(now),
                        webhook_deliveries::created_at.eq(now),
                        webhook_deliveries::updated_at.eq(now),
                    )
                })
                .collect();
            insert!(webhook_deliveries::table, &ds);
        }
        Ok(())
    })
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backlog_of_one_tenant_does_not_delay_another() {
    let db = TestDb::new();
    let app = server(&db).await;
    let slow = WebhookReceiver::start().await;
    slow.set_default(Reply::status(204).delayed(Duration::from_millis(500)));
    let healthy = WebhookReceiver::start().await;
    let (slow_tenant, slow_endpoint) = tenant_with_endpoint(&app, &slow.url).await;
    let (other, other_endpoint) = tenant_with_endpoint(&app, &healthy.url).await;
    backlog(&db, &slow_tenant, &slow_endpoint, 20_000);
    // The dispatcher is busy with the backlog.
    wait_until(
        "the backlog is being sent",
        Duration::from_secs(30),
        async || slow.count() >= 4,
    )
    .await;
    let state = delivery_state(&app, &slow_tenant, &slow_endpoint).await;
    assert_eq!(state["circuit"], "closed", "{state}");
    assert!(state["pending"].as_i64().unwrap() > 19_000, "{state}");
    // Claimed: at most the cap (4) being sent, fewer than the cap waiting for a slot, and a few
    // finished whose outcome the recorder has not written yet (it writes in batches, beside the
    // sending and the claims): a few times the cap, not the backlog.
    assert!(
        (1..=11).contains(&state["inFlight"].as_i64().unwrap()),
        "the per-endpoint cap holds: {state}"
    );
    assert!(state["oldestDueAt"].is_string(), "{state}");

    let sent = Instant::now();
    post_event(&app, &other, "other", 0).await;
    wait_until(
        "the other tenant's delivery",
        Duration::from_secs(30),
        async || healthy.count() >= 1,
    )
    .await;
    let waited = healthy.requests()[0].received_at - sent;
    eprintln!("behind a backlog of 20,000: delivered {waited:?} after the event");
    // A generous bound (the suite runs tests side by side on two cores); the real figure,
    // tens of milliseconds, is in docs/benchmarks.md. Behind the backlog before, it was minutes.
    assert!(
        waited <= Duration::from_secs(5),
        "the other tenant's delivery waited {waited:?} behind the backlog"
    );
    // Its outcome is recorded by the recorder, beside the sending: shortly after it arrived.
    wait_until(
        "the other tenant's delivery is recorded as succeeded",
        Duration::from_secs(30),
        async || statuses(&db, &other_endpoint).get("succeeded") == Some(&1),
    )
    .await;
    app.stop().await;
}

/// A tenant with one endpoint, through the store; returns their ids.
fn store_endpoint(db: &TestDb, name: &str) -> (String, String) {
    let mut conn = db.connect();
    let tenant = tenant_store::tenants::insert(
        &mut conn,
        tenant_core::NewTenant::parse(name, None, None).unwrap(),
        Utc::now(),
    )
    .unwrap();
    let endpoint = tenant_store::webhooks::insert(
        &mut conn,
        &tenant.id,
        tenant_store::webhooks::NewEndpoint {
            url: "https://example.com/hook".into(),
            description: None,
            event_types: vec![],
            enabled: true,
            secret: tenant_core::Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        },
        Utc::now(),
        &moltbot_saas_tests::test_keys(),
    )
    .unwrap();
    (tenant.id.to_string(), endpoint.id.to_string())
}

#[test]
fn claims_are_round_robin_across_endpoints_capped_and_skip_open_circuits() {
    use tenant_store::deliveries::{ClaimLimits, claim};
    use tenant_store::endpoint_circuits::{self, CircuitRow, OPEN};

    let db = TestDb::new();
    let (ta, a) = store_endpoint(&db, "Backlog Co");
    let (tb, b) = store_endpoint(&db, "Small Co");
    let now = Utc::now();
    // A's 50 deliveries are all older than B's one.
    enqueue_due(
        &db,
        &ta,
        &a,
        50,
        (now - chrono::Duration::minutes(10)).naive_utc(),
    );
    enqueue_due(&db, &tb, &b, 1, now.naive_utc());
    let mut conn = db.connect();
    let lease = now + chrono::Duration::seconds(60);
    fn limits(limit: i64, exclude: &[String]) -> ClaimLimits<'_> {
        ClaimLimits {
            limit,
            per_endpoint: 4,
            fast: &[],
            deep: 0,
            exclude,
        }
    }
    // Round-robin: A's first, B's first, then A's second.
    let first = claim(&mut conn, "one", now, lease, limits(3, &[])).unwrap();
    let of = |cs: &[tenant_store::deliveries::Claimed], e: &str| {
        cs.iter().filter(|c| c.endpoint_id == e).count()
    };
    assert_eq!((of(&first, &a), of(&first, &b)), (2, 1));
    // At most 4 of one endpoint per claim, however many are due.
    let second = claim(&mut conn, "one", now, lease, limits(100, &[])).unwrap();
    assert_eq!((of(&second, &a), of(&second, &b)), (4, 0));
    // An endpoint named fast gives up to `deep` at once, the others still their cap.
    let fast = [a.clone()];
    let deep = claim(
        &mut conn,
        "one",
        now,
        lease,
        ClaimLimits {
            limit: 100,
            per_endpoint: 4,
            fast: &fast,
            deep: 16,
            exclude: &[],
        },
    )
    .unwrap();
    assert_eq!((of(&deep, &a), of(&deep, &b)), (16, 0));
    // An endpoint the claimer holds its cap of is left alone.
    let excluded = [a.clone()];
    assert!(
        claim(&mut conn, "one", now, lease, limits(100, &excluded))
            .unwrap()
            .is_empty()
    );
    // So is an endpoint whose circuit is open.
    let mut open = CircuitRow::closed(&a);
    open.state = OPEN.to_owned();
    open.retry_at = Some(lease.naive_utc());
    endpoint_circuits::save(&mut conn, &open, now).unwrap();
    assert!(
        claim(&mut conn, "one", now, lease, limits(100, &[]))
            .unwrap()
            .is_empty()
    );
    // Its probe goes to exactly one claimer, once the circuit may be probed.
    assert!(
        endpoint_circuits::take_probes(&mut conn, "one", now, lease)
            .unwrap()
            .is_empty()
    );
    let later = lease + chrono::Duration::seconds(1);
    let until = later + chrono::Duration::seconds(60);
    assert_eq!(
        endpoint_circuits::take_probes(&mut conn, "one", later, until).unwrap(),
        vec![a.clone()]
    );
    assert!(
        endpoint_circuits::take_probes(&mut conn, "two", later, until)
            .unwrap()
            .is_empty()
    );
    let probe = tenant_store::deliveries::claim_probe(&mut conn, "one", &a, later, until)
        .unwrap()
        .unwrap();
    assert_eq!(probe.endpoint_id, a);
}

#[test]
fn concurrent_claimers_never_take_the_same_delivery() {
    use tenant_store::deliveries::{ClaimLimits, claim};

    let db = TestDb::new();
    let mut endpoints = Vec::new();
    for i in 0..5 {
        let (t, e) = store_endpoint(&db, &format!("Claim Co {i}"));
        enqueue_due(&db, &t, &e, 200, Utc::now().naive_utc());
        endpoints.push(e);
    }
    let claimed: Vec<Vec<String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let (db, endpoints) = (&db, &endpoints);
                scope.spawn(move || {
                    let mut conn = db.connect();
                    let owner = format!("claimer-{w}");
                    let mut mine = Vec::new();
                    loop {
                        let now = Utc::now();
                        let got = claim(
                            &mut conn,
                            &owner,
                            now,
                            now + chrono::Duration::seconds(600),
                            ClaimLimits {
                                limit: 7,
                                per_endpoint: 4,
                                // Two endpoints give more at once: the deep claims of fast
                                // endpoints never overlap either.
                                fast: &endpoints[..2],
                                deep: 6,
                                exclude: &[],
                            },
                        );
                        let got = match got {
                            Ok(got) => got,
                            // SQLite: another claimer holds the write lock; try again.
                            Err(e) if e.to_string().contains("locked") => continue,
                            Err(e) => panic!("{e}"),
                        };
                        if got.is_empty() {
                            return mine;
                        }
                        mine.extend(got.into_iter().map(|c| c.id));
                    }
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let all: Vec<&String> = claimed.iter().flatten().collect();
    let distinct: HashSet<&String> = all.iter().copied().collect();
    assert_eq!(all.len(), distinct.len(), "a delivery was claimed twice");
    assert_eq!(distinct.len(), 1000, "every delivery was claimed");
}
