//! Seeds a database with many tenants, each with a Telegram and a Discord channel, for
//! benchmarks: `cargo run --release -p tenant-server --example seed -- DATABASE_URL COUNT`.
//!
//! It goes through the store (the same validation and rows as the API), in transactions of a
//! thousand tenants, so 100k tenants take seconds rather than the minutes the API would.
//! Credentials are sealed with the key ring the server would use with the same environment
//! (`SAAS_ENCRYPTION_KEYS`, else the development key beside the SQLite file).

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use serde_json::json;
use tenant_core::{NewChannel, NewTenant};
use tenant_store::{Connection, Database, DatabaseUrl, PoolConfig, channels, migrations, tenants};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(url), Some(count)) = (
        args.get(1),
        args.get(2).and_then(|c| c.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: seed DATABASE_URL COUNT");
        return ExitCode::FAILURE;
    };
    match seed(url, count) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seed failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn seed(url: &str, count: usize) -> Result<(), Box<dyn std::error::Error>> {
    let db = Database::connect(
        &DatabaseUrl::parse(url)?,
        &PoolConfig {
            max_size: 1,
            ..PoolConfig::default()
        },
    )?;
    let settings = tenant_server::settings::Settings::from_lookup(|k| {
        if k == "DATABASE_URL" {
            Some(url.to_owned())
        } else {
            std::env::var(k).ok()
        }
    })?;
    let keys = tenant_server::keys::key_ring(&settings)?;
    let mut conn = db.get()?;
    migrations::run_pending(&mut conn)?;
    let started = std::time::Instant::now();
    for batch in 0..count.div_ceil(1000) {
        conn.transaction::<_, tenant_store::StoreError, _>(|c| {
            for i in batch * 1000..((batch + 1) * 1000).min(count) {
                let now = tenant_core::now();
                let new = NewTenant::parse(&format!("Bench tenant {i}"), None, None).map_err(|e| tenant_store::StoreError::Pool(e.to_string()))?;
                let tenant = tenants::insert(c, new, now)?;
                let tg = json!({"botToken": format!("{}:AAbench-token-{}", 100_000 + i, tenant.id.short_hex())});
                let dc = json!({"token": format!("bench.discord.token.{}", tenant.id.short_hex())});
                for (kind, creds) in [("telegram", tg), ("discord", dc)] {
                    let ch = NewChannel::parse(kind, Some(true), None, Some(&creds)).map_err(|e| tenant_store::StoreError::Pool(e.to_string()))?;
                    channels::insert(c, &tenant.id, ch, now, &keys)?;
                }
            }
            Ok(())
        })?;
    }
    println!(
        "seeded {count} tenants with 2 channels each in {:.1?}",
        started.elapsed()
    );
    Ok(())
}
