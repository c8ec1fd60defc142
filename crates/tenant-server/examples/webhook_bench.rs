//! Webhook delivery benchmark: `cargo run --release -p tenant-server --example webhook_bench --
//! DATABASE_URL [COUNT] [RATE] [SECONDS] [HANGING] [FAIR_RATE] [FAIR_SECONDS]`.
//!
//! On a fresh, migrated database it creates a tenant with one endpoint on a local receiver
//! (actix, in this process, answering 204), then measures:
//! 1. throughput: COUNT (default 20000) deliveries enqueued, then drained by the real dispatcher
//!    as `serve` runs it (`run`: 256 in flight, at most 4 per endpoint): deliveries per second
//!    from start to the last delivery received; once to that one endpoint, once spread over ten
//!    endpoints of ten tenants (`throughput10`);
//! 2. latency: events ingested through the real ingest use case at RATE per second (default 500)
//!    for SECONDS (default 20) while the dispatcher runs; for each, the time from just before the
//!    ingest call to the receiver getting the delivery: p50, p99, max;
//! 3. fairness, for each count h in HANGING (comma-separated, e.g. `0,1,10`; empty skips): h more
//!    tenants whose endpoints accept connections and never answer (the default 10 s timeout, the
//!    default circuit), and events for the healthy tenant and each hanging one interleaved, each at
//!    FAIR_RATE per second (default 50) for FAIR_SECONDS (default 40): the healthy tenant's
//!    latency p50, p99, max.
//!
//! Each figure is one JSON line on stdout.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use chrono::Utc;
use serde_json::{Map, Value, json};
use tenant_core::{NewTenant, Secret};
use tenant_store::crypto::KeyRing;
use tenant_store::webhooks::{self, NewEndpoint};
use tenant_store::{Database, DatabaseUrl, PoolConfig, deliveries, migrations, tenants};
use tenant_webhooks::delivery::{AddressPolicy, CircuitPolicy, ClientConfig};
use tenant_webhooks::ingest::{self, EventInput};
use tenant_webhooks::{Dispatcher, DispatcherConfig, RetrySchedule, SigningSecret};
use uuid::Uuid;

/// What the receiver got in the current phase: distinct deliveries of the phase's events (by
/// their `webhook-id`), with the latency of each first arrival, how many arrived again (a retry of
/// a delivery whose answer was lost or late), and how many belonged to an earlier phase (held by
/// that phase's stopped dispatcher until their lease ran out).
#[derive(Default)]
struct Seen {
    phase: String,
    count: u64,
    duplicates: u64,
    stale: u64,
    ids: HashSet<String>,
    latencies_us: Vec<i64>,
}

impl Seen {
    fn phase(phase: &str) -> Self {
        Seen {
            phase: phase.to_owned(),
            ..Seen::default()
        }
    }

    /// The phase's latencies (taken), deliveries, deliveries sent twice and stale deliveries.
    fn results(&mut self) -> (Vec<i64>, u64, u64, u64) {
        let latencies = std::mem::take(&mut self.latencies_us);
        (latencies, self.count, self.duplicates, self.stale)
    }
}

async fn receive(
    request: HttpRequest,
    body: web::Bytes,
    seen: web::Data<Arc<Mutex<Seen>>>,
) -> HttpResponse {
    let now = Utc::now().timestamp_micros();
    let id = request
        .headers()
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = serde_json::from_slice::<Value>(&body).unwrap_or_default();
    let sent = body["data"]["t0"].as_i64();
    let mut s = seen.lock().unwrap();
    if body["data"]["phase"].as_str() != Some(s.phase.as_str()) {
        s.stale += 1;
        return HttpResponse::NoContent().finish();
    }
    if !s.ids.insert(id) {
        s.duplicates += 1;
        return HttpResponse::NoContent().finish();
    }
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
        endpoint_concurrency: 4,
        circuit: CircuitPolicy::default(),
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

/// A tenant with one endpoint on `url`; returns its account id.
fn tenant_with_endpoint(
    conn: &mut tenant_store::AnyConnection,
    ring: &KeyRing,
    url: &str,
) -> (tenant_core::TenantId, Uuid, String) {
    let name = format!("Bench {}", Uuid::new_v4().simple());
    let tenant = tenants::insert(
        conn,
        NewTenant::parse(&name, None, None).unwrap(),
        Utc::now(),
    )
    .unwrap();
    let endpoint = webhooks::insert(
        conn,
        &tenant.id,
        NewEndpoint {
            url: url.to_owned(),
            description: None,
            event_types: vec![],
            enabled: true,
            secret: Secret::new(SigningSecret::generate().expose().to_owned()),
        },
        Utc::now(),
        ring,
    )
    .unwrap();
    (
        tenant.id,
        endpoint.id,
        tenant.account_id.as_str().to_owned(),
    )
}

fn event(account: &str, i: u64, prefix: &str) -> EventInput {
    let mut data = Map::new();
    data.insert("t0".into(), json!(Utc::now().timestamp_micros()));
    data.insert("phase".into(), json!(prefix));
    data.insert(
        "text".into(),
        json!("a message of a typical length, about a hundred bytes of text in all"),
    );
    EventInput {
        id: format!("{prefix}-{i}"),
        event_type: "message.received".into(),
        account_id: Some(account.to_owned()),
        data,
        ..EventInput::default()
    }
}

/// p50, p99 and max of latencies in µs, in ms.
fn percentiles(mut lat: Vec<i64>) -> (f64, f64, f64) {
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    (pct(0.50), pct(0.99), pct(1.0))
}

/// Waits until the receiver has `total` deliveries (or 60 s passed).
async fn wait_for(seen: &Arc<Mutex<Seen>>, total: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap().count < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// COUNT deliveries queued over `accounts`, then drained by a running dispatcher: per second.
async fn throughput(
    db: &Database,
    ring: &Arc<KeyRing>,
    seen: &Arc<Mutex<Seen>>,
    accounts: &[String],
    count: u64,
    label: &str,
) {
    let mut conn = db.get().unwrap();
    let phase = format!("tp-{}", Uuid::new_v4().simple());
    for i in 0..count {
        let account = &accounts[(i as usize) % accounts.len()];
        ingest::ingest(&mut conn, event(account, i, &phase), Utc::now()).unwrap();
    }
    *seen.lock().unwrap() = Seen::phase(&phase);
    let dispatcher = Arc::new(Dispatcher::new(db.clone(), ring.clone(), config()).unwrap());
    let started = Instant::now();
    let runner = tokio::spawn(dispatcher.clone().run());
    wait_for(seen, count).await;
    let elapsed = started.elapsed().as_secs_f64();
    // The recorder's last batches land before the dispatcher stops.
    let deadline = Instant::now() + Duration::from_secs(30);
    while deliveries::queue_depth(&mut conn, Utc::now())
        .unwrap()
        .pending
        > 0
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop(&dispatcher, runner).await;
    let (delivered, duplicates, stale) = {
        let s = seen.lock().unwrap();
        (s.count, s.duplicates, s.stale)
    };
    println!(
        "{}",
        json!({"phase": label, "endpoints": accounts.len(), "deliveries": delivered, "duplicates": duplicates, "stale": stale, "seconds": elapsed, "perSecond": delivered as f64 / elapsed})
    );
    *seen.lock().unwrap() = Seen::default();
}

/// Stops a phase's dispatcher as `serve` does on SIGTERM: its unsent claims given back, its sends
/// in flight recorded (else the next phase would meet them after their lease, or twice).
async fn stop(dispatcher: &Dispatcher, runner: tokio::task::JoinHandle<()>) {
    dispatcher.stop();
    if tokio::time::timeout(dispatcher.stop_grace(), runner)
        .await
        .is_err()
    {
        eprintln!("a dispatcher did not stop within its grace");
    }
}

/// Accepts connections on 127.0.0.1 and never answers; returns the port.
async fn hanging_server(held: Arc<Mutex<Vec<tokio::net::TcpStream>>>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            held.lock().unwrap().push(socket);
        }
    });
    port
}

#[actix_web::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args.get(1).expect(
        "usage: webhook_bench DATABASE_URL [COUNT] [RATE] [SECONDS] [HANGING] [FAIR_RATE] [FAIR_SECONDS]",
    );
    let count: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let rate: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(500);
    let seconds: u64 = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(20);
    let hanging: Vec<usize> = args
        .get(5)
        .map(|a| a.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_default();
    let fair_rate: u64 = args.get(6).and_then(|a| a.parse().ok()).unwrap_or(50);
    let fair_seconds: u64 = args.get(7).and_then(|a| a.parse().ok()).unwrap_or(40);

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
    // A throwaway key ring: the bench's endpoint secrets are sealed like any other.
    let ring = Arc::new(KeyRing::parse(&KeyRing::generate_entry("bench").unwrap()).unwrap());
    let healthy_url = format!("http://127.0.0.1:{port}/hook");
    let (_, _, account) = tenant_with_endpoint(&mut conn, &ring, &healthy_url);

    // 1. Throughput: to one endpoint, then spread over ten.
    throughput(
        &db,
        &ring,
        &seen,
        std::slice::from_ref(&account),
        count,
        "throughput",
    )
    .await;
    let mut ten = Vec::new();
    let mut ten_tenants = Vec::new();
    for i in 0..10 {
        let (t, e, a) = tenant_with_endpoint(&mut conn, &ring, &format!("{healthy_url}/{i}"));
        ten.push(a);
        ten_tenants.push((t, e));
    }
    throughput(&db, &ring, &seen, &ten, count, "throughput10").await;
    for (t, e) in ten_tenants {
        webhooks::delete(&mut conn, &t, e).unwrap();
    }
    let depth = deliveries::queue_depth(&mut conn, Utc::now()).unwrap();
    assert_eq!(depth.pending, 0);

    // 2. Latency at a steady rate, with the dispatcher running as in `serve`.
    let dispatcher = Arc::new(Dispatcher::new(db.clone(), ring.clone(), config()).unwrap());
    let runner = tokio::spawn(dispatcher.clone().run());
    let wake = dispatcher.waker();
    let total = rate * seconds;
    let db2 = db.clone();
    let account2 = account.clone();
    let phase = format!("lat-{}", Uuid::new_v4().simple());
    *seen.lock().unwrap() = Seen::phase(&phase);
    let pace = tokio::task::spawn_blocking(move || {
        let mut conn = db2.get().unwrap();
        let start = Instant::now();
        for i in 0..total {
            let due = start + Duration::from_micros(i * 1_000_000 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            ingest::ingest(&mut conn, event(&account2, i, &phase), Utc::now()).unwrap();
            wake.notify_one();
        }
    });
    pace.await.unwrap();
    wait_for(&seen, total).await;
    stop(&dispatcher, runner).await;
    let (lat, received, duplicates, stale) = seen.lock().unwrap().results();
    let (p50, p99, max) = percentiles(lat);
    println!(
        "{}",
        json!({"phase": "latency", "rate": rate, "events": total, "received": received, "duplicates": duplicates, "stale": stale, "p50Ms": p50, "p99Ms": p99, "maxMs": max})
    );

    // 3. Fairness: the healthy tenant's latency beside h hanging tenants.
    let held = Arc::new(Mutex::new(Vec::new()));
    let hang_port = hanging_server(held.clone()).await;
    for h in hanging {
        let run_id = Uuid::new_v4().simple().to_string();
        *seen.lock().unwrap() = Seen::phase(&format!("fair-{run_id}-0"));
        let mut stuck = Vec::new();
        let mut accounts = vec![account.clone()];
        for i in 0..h {
            let (t, e, a) = tenant_with_endpoint(
                &mut conn,
                &ring,
                &format!("http://127.0.0.1:{hang_port}/hang/{i}"),
            );
            stuck.push((t, e));
            accounts.push(a);
        }
        let dispatcher = Arc::new(Dispatcher::new(db.clone(), ring.clone(), config()).unwrap());
        let runner = tokio::spawn(dispatcher.clone().run());
        let wake = dispatcher.waker();
        let db2 = db.clone();
        let total = fair_rate * fair_seconds;
        let pace = tokio::task::spawn_blocking(move || {
            let mut conn = db2.get().unwrap();
            let start = Instant::now();
            for i in 0..total {
                let due = start + Duration::from_micros(i * 1_000_000 / fair_rate);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                for (n, a) in accounts.iter().enumerate() {
                    let id = format!("fair-{run_id}-{n}");
                    ingest::ingest(&mut conn, event(a, i, &id), Utc::now()).unwrap();
                }
                wake.notify_one();
            }
        });
        pace.await.unwrap();
        wait_for(&seen, total).await;
        let connections = held.lock().unwrap().len();
        let ids: Vec<String> = stuck.iter().map(|(_, e)| e.to_string()).collect();
        let states = deliveries::queue_states(&mut conn, &ids, Utc::now()).unwrap();
        let open = states.values().filter(|q| q.circuit != "closed").count();
        stop(&dispatcher, runner).await;
        let (lat, received, duplicates, stale) = seen.lock().unwrap().results();
        let (p50, p99, max) = percentiles(lat);
        println!(
            "{}",
            json!({"phase": "fairness", "hanging": h, "rate": fair_rate, "seconds": fair_seconds, "events": total, "received": received, "duplicates": duplicates, "stale": stale, "p50Ms": p50, "p99Ms": p99, "maxMs": max, "hangingConnections": connections, "circuitsOpen": open})
        );
        held.lock().unwrap().clear();
        if std::env::var_os("BENCH_KEEP").is_some() {
            continue;
        }
        for (t, e) in stuck {
            webhooks::delete(&mut conn, &t, e).unwrap();
        }
    }
}
