//! Writes a varied set of rendered gateway configs for validation with the real gateway:
//! `cargo run -p tenant-configgen --example render-fixtures -- OUT_DIR [BRIDGE_DIR]`.
//!
//! Layout: `OUT_DIR/<dialect>/combined-<secrets>.json`, `combined-base-<secrets>.json` (merged
//! with an operator base), `bulk-<secrets>.json` (many tenants), and
//! `per-tenant/<accountId>-<secrets>.json` for every tenant, suspended ones included. Each
//! document of the `env` and `secret-ref` modes has its environment file beside it, with the same
//! name and the extension `.env`. Every tenant, channel kind, secrets mode and dialect is covered.
//!
//! With `BRIDGE_DIR` (where the bridge plugin is installed: the gateway's validator needs every
//! `plugins.load.paths` entry on disk), the documents that enable the bridge are written too:
//! `combined-bridge-<secrets>.json`, `combined-base-bridge-<secrets>.json` (the operator base
//! tuning the plugin) and `per-tenant/<accountId>-bridge-<secrets>.json` for the first tenant.

#![allow(clippy::print_stdout)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{Value, json};
use tenant_configgen::{
    BRIDGE_PLUGIN_ID, BaseConfig, BridgeOptions, ConfigError, Dialect, RenderOptions,
    RenderedConfig, SecretsMode, render_combined, render_tenant,
};
use tenant_core::Secret;

#[path = "../tests/fixture/mod.rs"]
mod fixture;

const BASE_CURRENT: &str = include_str!("../tests/fixture/base-current.json5");
const BASE_LEGACY: &str = include_str!("../tests/fixture/base-legacy.json5");

fn write(dir: &Path, stem: &str, rendered: &RenderedConfig) -> std::io::Result<usize> {
    fs::create_dir_all(dir)?;
    fs::write(dir.join(format!("{stem}.json")), &rendered.json)?;
    if let Some(env) = &rendered.env_file {
        fs::write(dir.join(format!("{stem}.env")), env)?;
    }
    Ok(1)
}

/// The dialect's base with the operator tuning the bridge plugin.
fn with_plugin_settings(base: &BaseConfig) -> Result<BaseConfig, ConfigError> {
    let mut root = base.as_map().clone();
    root.insert(
        "plugins".into(),
        json!({"entries": {BRIDGE_PLUGIN_ID: {"config": {"includeContent": false, "maxSpoolBytes": 134_217_728}}}}),
    );
    BaseConfig::from_value(Value::Object(root))
}

fn run(out: &Path, bridge_dir: Option<&Path>) -> Result<usize, Box<dyn std::error::Error>> {
    let bridge = bridge_dir.map(|dir| BridgeOptions {
        plugin_path: dir.display().to_string(),
        url: "https://saas.example.com".into(),
        token: Some(Secret::new("msgw_fixture_gateway_token_0123456789abcdef")),
    });
    let varied = fixture::varied();
    let varied_sources = fixture::sources(&varied);
    let bulk = fixture::bulk(500);
    let bulk_sources = fixture::sources(&bulk);
    let mut files = 0;
    for dialect in Dialect::ALL {
        let dir = out.join(dialect.as_str());
        let base = BaseConfig::parse(match dialect {
            Dialect::Current => BASE_CURRENT,
            Dialect::Legacy => BASE_LEGACY,
        })?;
        for secrets in SecretsMode::ALL {
            let opts = RenderOptions {
                dialect: *dialect,
                secrets: *secrets,
                ..RenderOptions::default()
            };
            if let Err(e) = opts.validate() {
                // secret-ref with the legacy dialect: refused by design.
                assert!(
                    matches!(e, ConfigError::UnsupportedSecretsMode { .. }),
                    "{e}"
                );
                continue;
            }
            let s = secrets.as_str();
            files += write(
                &dir,
                &format!("combined-{s}"),
                &render_combined(&varied_sources, &opts)?,
            )?;
            files += write(
                &dir,
                &format!("bulk-{s}"),
                &render_combined(&bulk_sources, &opts)?,
            )?;
            let with_base = RenderOptions {
                base: Some(base.clone()),
                ..opts.clone()
            };
            files += write(
                &dir,
                &format!("combined-base-{s}"),
                &render_combined(&varied_sources, &with_base)?,
            )?;
            for source in &varied_sources {
                let stem = format!("{}-{s}", source.tenant.account_id);
                files += write(
                    &dir.join("per-tenant"),
                    &stem,
                    &render_tenant(source, &opts)?,
                )?;
            }
            if let Some(bridge) = &bridge {
                let opts = RenderOptions {
                    bridge: Some(bridge.clone()),
                    ..opts.clone()
                };
                files += write(
                    &dir,
                    &format!("combined-bridge-{s}"),
                    &render_combined(&varied_sources, &opts)?,
                )?;
                let tuned = RenderOptions {
                    base: Some(with_plugin_settings(&base)?),
                    ..opts.clone()
                };
                files += write(
                    &dir,
                    &format!("combined-base-bridge-{s}"),
                    &render_combined(&varied_sources, &tuned)?,
                )?;
                if let Some(first) = varied_sources.first() {
                    let stem = format!("{}-bridge-{s}", first.tenant.account_id);
                    files += write(
                        &dir.join("per-tenant"),
                        &stem,
                        &render_tenant(first, &opts)?,
                    )?;
                }
            }
        }
    }
    Ok(files)
}

fn main() -> ExitCode {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: render-fixtures OUT_DIR [BRIDGE_DIR]");
        return ExitCode::from(2);
    };
    let bridge_dir = std::env::args_os().nth(2).map(PathBuf::from);
    if bridge_dir.as_ref().is_some_and(|d| !d.is_absolute()) {
        eprintln!("render-fixtures: BRIDGE_DIR must be an absolute path");
        return ExitCode::from(2);
    }
    match run(&out, bridge_dir.as_deref()) {
        Ok(n) => {
            println!("wrote {n} configs under {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("render-fixtures: {e}");
            ExitCode::FAILURE
        }
    }
}
