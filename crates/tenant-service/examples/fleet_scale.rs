//! Scale figures of the gateway fleet (issue 25): 100,000 tenants on 50 gateways, against a
//! database seeded by the `seed` example. Not a test: it prints figures for `docs/benchmarks.md`.
//!
//! ```text
//! cargo build --release -p tenant-service --example seed --example fleet_scale
//! seed sqlite://$DIR/one.db 100000                 # 100k tenants × 2 channels
//! cp $DIR/one.db $DIR/fleet.db                     # (and its -wal/-shm, dev keys beside it)
//! fleet_scale memory sqlite://$DIR/one.db          # today's single combined document
//! fleet_scale place sqlite://$DIR/fleet.db 50      # 50 shared gateways, every tenant placed
//! fleet_scale memory sqlite://$DIR/fleet.db        # the 50 documents (and default's, empty)
//! fleet_scale rerender sqlite://$DIR/fleet.db      # one tenant changed: which documents render
//! fleet_scale decide sqlite://$DIR/fleet.db 200    # placement decisions
//! ```
//!
//! - `place`: creates N shared gateways (the `POST /gateways` use case) with room for 125 % of
//!   the tenants between them, then places every tenant in creation order with
//!   [`tenant_core::choose`] (the freest gateway, as `place_new` decides; one transaction, rows
//!   written by the store, no audit row per tenant), and closes `default` (capacity 0). On
//!   PostgreSQL one transaction of 100,000 placements is very slow (each updates one of 51
//!   gateway rows already updated in the same transaction; 16 s on SQLite, unfinished after
//!   15 minutes on PostgreSQL): docs/benchmarks.md says how the figures were placed there.
//! - `memory`: brings the document of every gateway (and `default`) to the current revision
//!   through [`ConfigCache`], as `GET /config` with each gateway's token does, and prints the heap
//!   the cache keeps: bytes allocated and not freed (a counting global allocator) while it holds
//!   the documents, less what is left once it is dropped; and the process's RSS. Then the same
//!   heap by part ([`ConfigCache::heap`]: held tenants, buckets, items, text, stamps, digests,
//!   chunk handles…, in all and per document) with what the allocator counted beyond the parts.
//!
//! Memory does not depend on the build: a debug build gives the same bytes (the `seed` example
//! writes 100,000 tenants in ~7 minutes in a debug build on two shared cores). Checkpoint the
//! WAL (`sqlite3 one.db 'PRAGMA wal_checkpoint(TRUNCATE)'`) before copying the file.
//! - `rerender`: the same documents, then one tenant renamed (the `PATCH /tenants/{id}` use
//!   case), then every document brought to the new revision: how many tenants each rendered
//!   again ([`ConfigCache::last_refresh`]) and how long each refresh took.
//! - `drain`: drains the first gateway (`pool-00`; the `POST /gateways/{id}/drain` use case: one
//!   transaction starting every move), then completes those moves as its heartbeat would
//!   ([`placement::complete_released`] with every tenant released at the current revision), and
//!   opens it again: how long each of the two transactions takes for the tenants it holds.
//!   Leaves every moved tenant on its new gateway.
//! - `decide`: the placement of new tenants: the decision alone ([`tenant_core::choose`] over the
//!   loads of every gateway), reading those loads ([`placement::loads`]: the stored counts), and
//!   the whole `place_new` use case (lock, loads, choice, row, audit) for ROUNDS tenants created
//!   for it; for comparison, the count of every tenant's placement that `loads` made before the
//!   counts were stored ([`gateways::recount_held`]), and the count of `default`'s tenants
//!   without a row ([`gateways::without_row`], made per decision only when `default` has a
//!   capacity above 0).
//!
//! Seeding 100,000 tenants with the `seed` example takes about 2.5 minutes on SQLite with a
//! `--profile profiling` build (100 transactions of 1,000 creates and 2,000 channel creates).
//!
//! Secrets and keys as the `seed` example (the development keys beside the SQLite file).

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::alloc::System;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tenant_configgen::RenderOptions;
use tenant_core::{GatewayId, NewTenant, Plan, Secret, TenantUpdate, Want, choose};
use tenant_service::api_keys::{self, ApiKeyHasher};
use tenant_service::deployment::{Deployment, Environment};
use tenant_service::fleet::gateways::{self as fleet_gateways, GatewayPatch, GatewaySpec};
use tenant_service::fleet::{FleetConfig, placement};
use tenant_service::gateway_config::{ConfigCache, Variant};
use tenant_service::{ServiceError, sealing, tenants};
use tenant_store::audit::AuditContext;
use tenant_store::crypto::KeyRing;
use tenant_store::gateways::{self, Placement};
use tenant_store::{Database, DatabaseUrl, config_revision, write_transaction};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["place", url, n] => n
            .parse::<usize>()
            .map_err(Into::into)
            .and_then(|n| place(url, n)),
        ["memory", url] => runtime().and_then(|rt| rt.block_on(memory(url))),
        ["rerender", url] => runtime().and_then(|rt| rt.block_on(rerender(url))),
        ["drain", url] => drain(url),
        ["decide", url, rounds] => rounds
            .parse::<usize>()
            .map_err(Into::into)
            .and_then(|r| decide(url, r)),
        _ => {
            eprintln!(
                "usage: fleet_scale place URL GATEWAYS | memory URL | rerender URL | drain URL | decide URL ROUNDS"
            );
            return ExitCode::FAILURE;
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleet_scale failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Res<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(1)
        .enable_all()
        .build()?)
}

/// The database, its key ring and the API key hasher, as the `seed` example opens them.
struct Env {
    db: Database,
    keys: Arc<KeyRing>,
    hasher: ApiKeyHasher,
}

fn open(url: &str) -> Res<Env> {
    let url = DatabaseUrl::parse(url)?;
    let data_dir = match (std::env::var("SAAS_DATA_DIR").ok(), &url) {
        (Some(dir), _) if !dir.trim().is_empty() => PathBuf::from(dir.trim()),
        (_, DatabaseUrl::Sqlite(path)) => path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), |d| d.to_path_buf()),
        _ => PathBuf::from("data"),
    };
    let deployment = Deployment {
        environment: Environment::Development,
        data_dir,
    };
    let keys = sealing::key_ring(None, &deployment)?;
    let api_key_secret = std::env::var("SAAS_API_KEY_SECRET").ok().map(Secret::new);
    let (secret, _) = api_keys::load_secret(api_key_secret.as_ref(), &deployment)?;
    let db = tenant_service::db::open(
        &url,
        &tenant_store::PoolConfig {
            max_size: 2,
            ..tenant_store::PoolConfig::default()
        },
        true,
    )?;
    Ok(Env {
        db,
        keys,
        hasher: ApiKeyHasher::new(&secret),
    })
}

fn ctx() -> AuditContext {
    AuditContext {
        actor_type: "cli".into(),
        ..AuditContext::default()
    }
}

fn place(url: &str, n: usize) -> Res<()> {
    let env = open(url)?;
    let mut conn = env.db.get()?;
    let cfg = FleetConfig::default();
    let total = tenant_store::tenants::list_all(&mut conn)?;
    let capacity = i64::try_from((total.len() * 5 / 4).div_ceil(n.max(1)))?;
    let started = Instant::now();
    for i in 0..n {
        let spec = GatewaySpec::parse(&format!("pool-{i:02}"), Some("shared"), Some(capacity))?;
        fleet_gateways::create(&mut conn, &ctx(), &env.hasher, &cfg, spec)?;
    }
    let placed = write_transaction(&mut conn, |c| {
        let c = &mut gateways::lock_fleet(c)?;
        let now = tenant_core::now();
        // `default` is being closed: it takes nobody.
        let mut fleet: Vec<_> = placement::loads(c, &cfg, now)?
            .into_iter()
            .filter(|g| !g.id.is_default())
            .collect();
        for g in &mut fleet {
            g.held = 0;
        }
        for t in &total {
            let to = choose(&fleet, Want::Shared)
                .map_err(|e| ServiceError::Internal(format!("no room: {e:?}")))?;
            if let Some(g) = fleet.iter_mut().find(|g| g.id == to) {
                g.held += 1;
            }
            gateways::set_placement(
                c,
                &Placement {
                    gateway_id: Some(to),
                    ..Placement::on_default(t.id)
                },
                now,
            )?;
        }
        Ok::<_, ServiceError>(total.len())
    })?;
    fleet_gateways::update(
        &mut conn,
        &ctx(),
        &cfg,
        &GatewayId::DEFAULT,
        GatewayPatch {
            capacity: Some(Some(0)),
            ..GatewayPatch::default()
        },
    )?;
    println!(
        "placed {placed} tenants on {n} gateways of capacity {capacity} in {:.1?}",
        started.elapsed()
    );
    Ok(())
}

fn drain(url: &str) -> Res<()> {
    let env = open(url)?;
    let mut conn = env.db.get()?;
    let cfg = FleetConfig::default();
    let (id, _) = all_gateways(&env)?
        .into_iter()
        .find(|(_, name)| name == "pool-00")
        .ok_or("no gateway named pool-00: run `place` first")?;
    let held = gateways::held_by(&mut conn, &id)?;
    let started = Instant::now();
    let (_, report) = fleet_gateways::drain(&mut conn, &ctx(), &cfg, &id)?;
    let drained = started.elapsed();
    println!(
        "drain of {} tenants: {} moving, {} staying, in {drained:.1?}",
        held.len(),
        report.moving,
        report.remaining
    );
    let released: Vec<_> = held.iter().map(|(t, ..)| *t).collect();
    let revision = config_revision::current(&mut conn)?;
    let started = Instant::now();
    let done = placement::complete_released(&mut conn, &ctx(), &id, &released, revision)?;
    println!(
        "completion of {done} moves (the source's heartbeat) in {:.1?}",
        started.elapsed()
    );
    fleet_gateways::update(
        &mut conn,
        &ctx(),
        &cfg,
        &id,
        GatewayPatch {
            draining: Some(false),
            ..GatewayPatch::default()
        },
    )?;
    Ok(())
}

/// `default` and every gateway created, by name.
fn all_gateways(env: &Env) -> Res<Vec<(GatewayId, String)>> {
    let mut conn = env.db.get()?;
    let mut all = vec![(GatewayId::DEFAULT, "default".to_owned())];
    all.extend(
        gateways::list(&mut conn)?
            .into_iter()
            .filter(|g| !g.id.is_default())
            .map(|g| (g.id, g.name)),
    );
    Ok(all)
}

fn variant(gateway: GatewayId, opts: &RenderOptions) -> Variant {
    Variant {
        gateway,
        dialect: opts.dialect,
        secrets: opts.secrets,
        per_tenant: false,
    }
}

/// VmRSS and VmHWM of this process, in MB.
fn rss() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (kb("VmRSS:") / 1024.0, kb("VmHWM:") / 1024.0)
}

/// Bytes allocated and not freed since `region` began.
fn live(region: &Region<'_, System>) -> i64 {
    let s = region.change();
    i64::try_from(s.bytes_allocated).unwrap_or(i64::MAX)
        - i64::try_from(s.bytes_deallocated).unwrap_or(i64::MAX)
        + i64::try_from(s.bytes_reallocated).unwrap_or(0)
}

fn mb(bytes: i64) -> f64 {
    bytes as f64 / 1_048_576.0
}

/// Brings every gateway's document to the current revision; returns (gateway, tenants, bytes,
/// time) per document.
async fn refresh_all(
    env: &Env,
    cache: &ConfigCache,
    opts: &RenderOptions,
    all: &[(GatewayId, String)],
) -> Res<Vec<(String, usize, usize, Duration)>> {
    let revision = config_revision::current(&mut *env.db.get()?)?;
    let mut out = Vec::with_capacity(all.len());
    for (id, name) in all {
        let started = Instant::now();
        let doc = cache
            .get(&env.db, opts, &env.keys, variant(*id, opts), revision)
            .await?;
        let took = started.elapsed();
        let stats = cache.last_refresh(variant(*id, opts)).await;
        out.push((
            name.clone(),
            stats.map_or(0, |s| s.rendered),
            doc.len(),
            took,
        ));
    }
    Ok(out)
}

async fn memory(url: &str) -> Res<()> {
    let env = open(url)?;
    let all = all_gateways(&env)?;
    let opts = RenderOptions::default();
    let (rss0, _) = rss();
    let region = Region::new(GLOBAL);
    let cache = ConfigCache::default();
    let started = Instant::now();
    let docs = refresh_all(&env, &cache, &opts, &all).await?;
    let took = started.elapsed();
    let held = live(&region);
    let (rss1, hwm1) = rss();
    let parts = cache.heap().await;
    drop(cache);
    let left = live(&region);
    let with_tenants = docs.iter().filter(|d| d.1 > 0).count();
    let tenants: usize = docs.iter().map(|d| d.1).sum();
    let bytes: usize = docs.iter().map(|d| d.2).sum();
    println!(
        "{} documents ({with_tenants} with tenants), {tenants} tenants, {:.1} MB of documents, built in {took:.1?}",
        docs.len(),
        bytes as f64 / 1_048_576.0
    );
    println!(
        "heap kept by the documents' cache: {:.1} MB ({held} bytes live with it, {left} after dropping it)",
        mb(held - left),
        held = held,
        left = left
    );
    println!(
        "RSS: {rss0:.1} MB before, {rss1:.1} MB with the documents (+{:.1}), peak {hwm1:.1} MB",
        rss1 - rss0
    );
    print_heap(parts, held - left);
    Ok(())
}

/// The heap the cache keeps, by part ([`ConfigCache::heap`]), against what the counting
/// allocator saw (`kept`): the rest is what the parts do not see (the allocator's view of
/// `Bytes` capacities, the map of variants, the cache's slots).
fn print_heap((parts, documents): (tenant_configgen::HeapParts, usize), kept: i64) {
    println!("heap by part, {documents} documents (MB; KB a document):");
    let per = |b: f64| b / 1024.0 / documents.max(1) as f64;
    for (part, bytes) in parts.parts() {
        println!(
            "  {part:<22} {:>8.2} MB {:>9.1} KB",
            mb(*bytes as i64),
            per(*bytes as f64)
        );
    }
    let total = i64::try_from(parts.total()).unwrap_or(i64::MAX);
    println!(
        "  {:<22} {:>8.2} MB {:>9.1} KB",
        "(sum of the parts)",
        mb(total),
        per(total as f64)
    );
    println!(
        "  {:<22} {:>8.2} MB {:>9.1} KB",
        "(allocator: the rest)",
        mb(kept - total),
        per((kept - total) as f64)
    );
}

async fn rerender(url: &str) -> Res<()> {
    let env = open(url)?;
    let all = all_gateways(&env)?;
    let opts = RenderOptions::default();
    let cache = ConfigCache::default();
    refresh_all(&env, &cache, &opts, &all).await?;
    // One tenant renamed, as `PATCH /tenants/{id}` does.
    let mut conn = env.db.get()?;
    let listed = tenant_store::tenants::list_all(&mut conn)?;
    let target = listed
        .get(listed.len() / 2)
        .map(|t| t.id)
        .ok_or("no tenant")?;
    drop(listed);
    let on = gateways::placement(&mut conn, &target)?.gateway_id;
    let name = format!("Renamed at {}", tenant_core::now().timestamp_millis());
    let update = TenantUpdate::parse(Some(&name), None, None, None)?;
    tenants::update_tenant(&mut conn, &ctx(), &target, update, Duration::ZERO)?;
    drop(conn);
    let docs = refresh_all(&env, &cache, &opts, &all).await?;
    let rendering: Vec<_> = docs.iter().filter(|d| d.1 > 0).collect();
    let name_on = all
        .iter()
        .find(|(id, _)| Some(*id) == on)
        .map_or("?", |(_, n)| n.as_str());
    println!(
        "one tenant renamed (on {name_on}): {} of {} documents rendered a tenant again ({} tenants in all): {:?}",
        rendering.len(),
        docs.len(),
        docs.iter().map(|d| d.1).sum::<usize>(),
        rendering.iter().map(|d| &d.0).collect::<Vec<_>>()
    );
    let mut others: Vec<Duration> = docs
        .iter()
        .filter(|d| d.1 == 0 && d.0 != "default")
        .map(|d| d.3)
        .collect();
    others.sort();
    if let (Some(changed), Some(median)) = (rendering.first(), others.get(others.len() / 2)) {
        println!(
            "refresh of {}: {:.1?}; of each unchanged gateway's document: median {median:.1?} [{:.1?}–{:.1?}]",
            changed.0,
            changed.3,
            others.first().copied().unwrap_or_default(),
            others.last().copied().unwrap_or_default()
        );
    }
    Ok(())
}

fn summary(label: &str, mut times: Vec<Duration>) {
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    if times.is_empty() {
        return;
    }
    println!(
        "{label}: median {:.1?}, p90 {:.1?}, min {:.1?}, max {:.1?} ({} runs)",
        at(0.5),
        at(0.9),
        at(0.0),
        at(1.0),
        times.len()
    );
}

fn decide(url: &str, rounds: usize) -> Res<()> {
    let env = open(url)?;
    let mut conn = env.db.get()?;
    let cfg = FleetConfig::default();
    let now = tenant_core::now();
    let loads = placement::loads(&mut conn, &cfg, now)?;
    println!(
        "{} gateways, {} tenants held; stored counts equal a recount: {}",
        loads.len(),
        loads.iter().map(|g| g.held).sum::<i64>(),
        gateways::held_counts(&mut conn)? == gateways::recount_held(&mut conn)?
    );
    // The decision alone.
    let n = 100_000;
    let started = Instant::now();
    let mut chosen = 0usize;
    for _ in 0..n {
        chosen += usize::from(choose(std::hint::black_box(&loads), Want::Shared).is_ok());
    }
    println!(
        "choose over {} gateways: {:.0} ns a decision ({chosen} decisions)",
        loads.len(),
        started.elapsed().as_nanos() as f64 / n as f64
    );
    // Reading the loads (the two counting queries and the gateway list).
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        let loads = placement::loads(&mut conn, &cfg, tenant_core::now())?;
        std::hint::black_box(choose(&loads, Want::Shared).ok());
        times.push(started.elapsed());
    }
    summary("loads + choose (read only)", times);
    // What reading the loads cost before the counts were stored: the count of every tenant's
    // placement (`recount_held` is the query `loads` made then); and the count of `default`'s
    // tenants without a row, which `loads` makes only when `default` has a capacity above 0.
    let slow = rounds.clamp(1, 30);
    let mut times = Vec::with_capacity(slow);
    for _ in 0..slow {
        let started = Instant::now();
        std::hint::black_box(gateways::recount_held(&mut conn)?);
        times.push(started.elapsed());
    }
    summary("recount_held (the counting read loads made before)", times);
    let mut times = Vec::with_capacity(slow);
    for _ in 0..slow {
        let started = Instant::now();
        std::hint::black_box(gateways::without_row(&mut conn)?);
        times.push(started.elapsed());
    }
    summary("without_row (default's tenants without a row)", times);
    // What `place_new` adds around the decision: the probe for tenants waiting for room, and
    // the floor of any write transaction (one row changed, the commit).
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        std::hint::black_box(tenant_store::unplaced::any(&mut conn)?);
        times.push(started.elapsed());
    }
    summary("unplaced::any (the probe for waiting tenants)", times);
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        write_transaction(&mut conn, config_revision::bump)?;
        times.push(started.elapsed());
    }
    summary(
        "a write transaction bumping the revision (the commit's floor)",
        times,
    );
    // The whole use case for new tenants.
    let creates = (0..rounds)
        .map(|i| {
            Ok(tenants::CreateTenant {
                ctx: ctx(),
                new: NewTenant::parse(&format!("Placement bench {i}"), None, None)?,
                at: tenant_core::now(),
                once: None,
            })
        })
        .collect::<Result<Vec<_>, ServiceError>>()?;
    let created = tenants::create_tenants(&mut conn, &env.hasher, &creates);
    let mut times = Vec::with_capacity(rounds);
    for result in created {
        let (tenant, _key) = result?;
        let started = Instant::now();
        placement::place_new(&mut conn, &cfg, &[(ctx(), tenant.id, Plan::Free, false)])?;
        times.push(started.elapsed());
    }
    summary(
        "place_new (write transaction: lock, loads, choose, row, audit)",
        times,
    );
    Ok(())
}
