//! Seeds a database with many tenants, each with a Telegram and a Discord channel, for
//! benchmarks: `cargo run --release -p tenant-service --example seed -- DATABASE_URL COUNT`.
//!
//! It goes through the same use cases as the API — `POST /tenants` (the tenant, its owner API
//! key and their audit entries, written by the group-commit batch function the server uses) and
//! `POST /tenants/{id}/channels` (each channel with its audit entry) — a thousand tenants per
//! transaction, so 100k tenants take seconds rather than the minutes the HTTP API would.
//! Secrets are the ones the server would use with the same environment: the key ring from
//! `SAAS_ENCRYPTION_KEYS` and the API key secret from `SAAS_API_KEY_SECRET`, else the
//! development keys in `SAAS_DATA_DIR` (by default beside the SQLite file).

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use serde_json::json;
use tenant_core::{NewChannel, NewTenant, Secret};
use tenant_service::api_keys::{self, ApiKeyHasher};
use tenant_service::deployment::{Deployment, Environment};
use tenant_service::{ServiceError, channels, sealing, tenants};
use tenant_store::audit::AuditContext;
use tenant_store::crypto::KeyRing;
use tenant_store::{Connection, DatabaseUrl};

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

/// The deployment as the server reads it: `SAAS_ENV`, and `SAAS_DATA_DIR` or the SQLite file's
/// directory.
fn deployment(url: &DatabaseUrl) -> Result<Deployment, Box<dyn std::error::Error>> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let environment = match var("SAAS_ENV") {
        Some(v) => v.trim().parse::<Environment>()?,
        None => Environment::Development,
    };
    let data_dir = match (var("SAAS_DATA_DIR"), url) {
        (Some(dir), _) => PathBuf::from(dir.trim()),
        (None, DatabaseUrl::Sqlite(path)) => match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        },
        (None, DatabaseUrl::Postgres(_)) => PathBuf::from("data"),
    };
    Ok(Deployment {
        environment,
        data_dir,
    })
}

fn seed(url: &str, count: usize) -> Result<(), Box<dyn std::error::Error>> {
    let url = DatabaseUrl::parse(url)?;
    let deployment = deployment(&url)?;
    let configured = match std::env::var("SAAS_ENCRYPTION_KEYS") {
        Ok(spec) if !spec.trim().is_empty() => Some(Arc::new(KeyRing::parse(&spec)?)),
        _ => None,
    };
    let keys = sealing::key_ring(configured.as_ref(), &deployment)?;
    let api_key_secret = std::env::var("SAAS_API_KEY_SECRET").ok().map(Secret::new);
    let (secret, _) = api_keys::load_secret(api_key_secret.as_ref(), &deployment)?;
    let hasher = ApiKeyHasher::new(&secret);
    let db = tenant_service::db::open(
        &url,
        &tenant_store::PoolConfig {
            max_size: 1,
            ..tenant_store::PoolConfig::default()
        },
        true,
    )?;
    let mut conn = db.get()?;
    let ctx = AuditContext {
        actor_type: "cli".into(),
        ..AuditContext::default()
    };
    let started = std::time::Instant::now();
    for batch in 0..count.div_ceil(1000) {
        let creates = (batch * 1000..((batch + 1) * 1000).min(count))
            .map(|i| {
                Ok(tenants::CreateTenant {
                    ctx: ctx.clone(),
                    new: NewTenant::parse(&format!("Bench tenant {i}"), None, None)?,
                    at: tenant_core::now(),
                    once: None,
                })
            })
            .collect::<Result<Vec<_>, ServiceError>>()?;
        let created = tenants::create_tenants(&mut conn, &hasher, &creates);
        conn.transaction::<_, ServiceError, _>(|c| {
            for (n, result) in created.into_iter().enumerate() {
                let (tenant, _key) = result?;
                let i = batch * 1000 + n;
                let tg = json!({"botToken": format!("{}:AAbench-token-{}", 100_000 + i, tenant.id.short_hex())});
                let dc = json!({"token": format!("bench.discord.token.{}", tenant.id.short_hex())});
                for (kind, creds) in [("telegram", tg), ("discord", dc)] {
                    let channel = NewChannel::parse(kind, Some(true), None, Some(&creds))?;
                    channels::create_channel(c, &ctx, &tenant.id, channel, &keys)?;
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
