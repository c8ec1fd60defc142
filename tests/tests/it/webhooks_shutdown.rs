//! A webhook dispatcher stopped gracefully (a deploy, a restart, SIGTERM) gives back what it
//! claimed but has not sent and records what it sent: the next process delivers the rest at once
//! (nothing waits for a lease to expire) and nothing is sent twice.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use moltbot_saas_tests::{Reply, TestDb, WebhookReceiver};
use tenant_store::schema::webhook_deliveries;

use crate::webhooks_support::{app, config, dispatcher, send_event, tenant_with_endpoint};

const EVENTS: usize = 40;

/// The endpoint's deliveries: (status, claimed by a dispatcher) → count.
fn deliveries_by_state(db: &TestDb, endpoint_id: &str) -> HashMap<(String, bool), usize> {
    let mut conn = db.connect();
    let rows: Vec<(String, Option<String>)> = webhook_deliveries::table
        .filter(webhook_deliveries::endpoint_id.eq(endpoint_id))
        .select((webhook_deliveries::status, webhook_deliveries::lease_owner))
        .load(&mut conn)
        .unwrap();
    let mut out = HashMap::new();
    for (status, owner) in rows {
        *out.entry((status, owner.is_some())).or_default() += 1;
    }
    out
}

async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_dispatcher_gives_back_its_claims_and_sends_nothing_twice() {
    let db = TestDb::new();
    let app = app(&db).await;
    let rx = WebhookReceiver::start().await;
    // Slow enough that the first dispatcher is stopped with sends in flight and more held.
    rx.set_default(Reply::status(204).delayed(Duration::from_millis(400)));
    let (tenant, endpoint) = tenant_with_endpoint(&app, &rx.url).await;
    let endpoint_id = endpoint["id"].as_str().unwrap().to_owned();
    for n in 0..EVENTS {
        send_event(&app, &tenant, &format!("shutdown-{n}")).await;
    }
    // A lease far longer than the test: a claim left behind would hold its delivery past the
    // end of the test.
    let mut cfg = config("0s,1s", Duration::from_secs(5), "127.0.0.1/32");
    cfg.lease = Duration::from_secs(600);

    let first = Arc::new(dispatcher(&db, cfg.clone()));
    let mut running = tokio::spawn(Arc::clone(&first).run());
    wait_until(
        "the first sends are in flight",
        Duration::from_secs(20),
        || rx.count() >= 1,
    )
    .await;
    first.stop();
    tokio::time::timeout(first.stop_grace(), &mut running)
        .await
        .expect("the dispatcher stops within its grace")
        .unwrap();

    // What the receiver got is recorded as delivered; the rest is due again, claimed by nobody.
    let sent = rx.count();
    assert!(
        sent < EVENTS,
        "the first dispatcher sent everything ({sent})"
    );
    let states = deliveries_by_state(&db, &endpoint_id);
    assert_eq!(
        states.get(&("succeeded".to_owned(), false)).copied(),
        Some(sent),
        "{states:?}"
    );
    assert_eq!(
        states.get(&("pending".to_owned(), false)).copied(),
        Some(EVENTS - sent),
        "{states:?}"
    );
    assert_eq!(states.len(), 2, "{states:?}");

    // The next process delivers the rest at once, not after the 600 s lease, and nothing twice.
    let second = Arc::new(dispatcher(&db, cfg));
    let running = tokio::spawn(Arc::clone(&second).run());
    wait_until("every delivery arrived", Duration::from_secs(60), || {
        rx.count() >= EVENTS
    })
    .await;
    second.stop();
    tokio::time::timeout(second.stop_grace(), running)
        .await
        .expect("the second dispatcher stops within its grace")
        .unwrap();
    let requests = rx.requests();
    let mut ids: Vec<&str> = requests.iter().map(|r| r.header("webhook-id")).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), EVENTS, "a delivery was sent twice or lost");
    assert_eq!(requests.len(), EVENTS, "a delivery was sent twice");
    assert_eq!(
        deliveries_by_state(&db, &endpoint_id),
        HashMap::from([(("succeeded".to_owned(), false), EVENTS)])
    );
}
