//! Webhook delivery benchmark: `cargo run --release -p tenant-server --example webhook_bench --
//! DATABASE_URL [COUNT] [RATE] [SECONDS]`.
//!
//! On a fresh, migrated database it creates a tenant with one endpoint on a local receiver
//! (actix, in this process, answering 204), then measures:
//! 1. throughput: COUNT (default 20000) deliveries enqueued, then drained by the real dispatcher
//!    (4 loops of 64, as `serve` runs it): deliveries per second from first claim to last record;
//! 2. latency: events ingested through the real ingest use case at RATE per second (default 500)
//!    for SECONDS (default 20) while the dispatcher runs; for each, the time from just before the
//!    ingest call to the receiver getting the delivery: p50, p99, max.
//!
//! Each figure is one JSON line on stdout.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use chrono::Utc;
use serde_json::{Map, Value, json};
use tenant_core::{NewTenant, Secret};
use tenant_store::crypto::KeyRing;
use tenant_store::webhooks::{self, NewEndpoint};
use tenant_store::{Database, DatabaseUrl, PoolConfig, deliveries, migrations, tenants};
use tenant_webhooks::delivery::{AddressPolicy, ClientConfig};
use tenant_webhooks::ingest::{self, EventInput};
use tenant_webhooks::{Dispatcher, DispatcherConfig, RetrySchedule, SigningSecret};

#[derive(Default)]
struct Seen {
    count: u64,
    latencies_us: Vec<i64>,
}

async fn receive(body: web::Bytes, seen: web::Data<Arc<Mutex<Seen>>>) -> HttpResponse {
    let now = Utc::now().timestamp_micros();
    let sent = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["data"]["t0"].as_i64());
    let mut s = seen.lock().unwrap();
    s.count += 1;
    if let Some(t0) = sent {
        s.latencies_us.push(now - t0);
    }
    HttpResponse::NoContent().finish()
}

fn config() -> DispatcherConfig {
    DispatcherConfig {
        workers: 4,
        batch_size: 64,
        lease: Duration::from_secs(60),
        schedule: RetrySchedule::default(),
        failure_grace: Duration::from_secs(5 * 86_400),
        poll_interval: Duration::from_millis(1000),
        metrics_interval: Duration::from_secs(3600),
        client: ClientConfig {
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            policy: AddressPolicy {
                allowed: AddressPolicy::parse_allowed("127.0.0.1/32").unwrap(),
            },
            require_https: false,
        },
    }
}

#[actix_web::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .expect("usage: webhook_bench DATABASE_URL [COUNT] [RATE] [SECONDS]");
    let count: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let rate: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(500);
    let seconds: u64 = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(20);

    let seen = Arc::new(Mutex::new(Seen::default()));
    let data = web::Data::new(seen.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .default_service(web::to(receive))
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());

    let db = Database::connect(
        &DatabaseUrl::parse(url).unwrap(),
        &PoolConfig {
            max_size: 16,
            ..PoolConfig::default()
        },
    )
    .unwrap();
    let mut conn = db.get().unwrap();
    migrations::run_pending(&mut conn).unwrap();
    // A throwaway key ring: the bench's endpoint secret is sealed like any other.
    let ring = Arc::new(KeyRing::parse(&KeyRing::generate_entry("bench").unwrap()).unwrap());
    let name = format!("Bench {}", uuid::Uuid::new_v4().simple());
    let tenant = tenants::insert(
        &mut conn,
        NewTenant::parse(&name, None, None).unwrap(),
        Utc::now(),
    )
    .unwrap();
    webhooks::insert(
        &mut conn,
        &tenant.id,
        NewEndpoint {
            url: format!("http://127.0.0.1:{port}/hook"),
            description: None,
            event_types: vec![],
            enabled: true,
            secret: Secret::new(SigningSecret::generate().expose().to_owned()),
        },
        Utc::now(),
        &ring,
    )
    .unwrap();
    let account = tenant.account_id.as_str().to_owned();
    let event = move |i: u64, prefix: &str| {
        let mut data = Map::new();
        data.insert("t0".into(), json!(Utc::now().timestamp_micros()));
        data.insert(
            "text".into(),
            json!("a message of a typical length, about a hundred bytes of text in all"),
        );
        EventInput {
            id: format!("{prefix}-{i}"),
            event_type: "message.received".into(),
            account_id: Some(account.clone()),
            data,
            ..EventInput::default()
        }
    };

    // 1. Throughput.
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    for i in 0..count as u64 {
        ingest::ingest(&mut conn, event(i, &format!("tp-{run_id}")), Utc::now()).unwrap();
    }
    let dispatcher = Arc::new(Dispatcher::new(db.clone(), ring.clone(), config()).unwrap());
    let started = Instant::now();
    let mut loops = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let d = dispatcher.clone();
        loops.spawn(async move { while d.dispatch_due(Utc::now()).await.unwrap().claimed > 0 {} });
    }
    while loops.join_next().await.is_some() {}
    let elapsed = started.elapsed().as_secs_f64();
    let delivered = seen.lock().unwrap().count;
    println!(
        "{}",
        json!({"phase": "throughput", "deliveries": delivered, "seconds": elapsed, "perSecond": delivered as f64 / elapsed})
    );
    let depth = deliveries::queue_depth(&mut conn, Utc::now()).unwrap();
    assert_eq!(depth.pending, 0);
    *seen.lock().unwrap() = Seen::default();

    // 2. Latency at a steady rate, with the dispatcher running as in `serve`.
    let runner = tokio::spawn(dispatcher.clone().run());
    let wake = dispatcher.waker();
    let total = rate * seconds;
    let db2 = db.clone();
    let pace = tokio::task::spawn_blocking(move || {
        let mut conn = db2.get().unwrap();
        let start = Instant::now();
        for i in 0..total {
            let due = start + Duration::from_micros(i * 1_000_000 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            ingest::ingest(&mut conn, event(i, &format!("lat-{run_id}")), Utc::now()).unwrap();
            wake.notify_one();
        }
    });
    pace.await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().count < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    runner.abort();
    let mut lat = std::mem::take(&mut seen.lock().unwrap().latencies_us);
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    println!(
        "{}",
        json!({"phase": "latency", "rate": rate, "events": total, "received": lat.len(), "p50Ms": pct(0.50), "p99Ms": pct(0.99), "maxMs": pct(1.0)})
    );
}
