//! The rendering rules, checked on parsed output; one module per concern.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use tenant_configgen::{
    BaseConfig, ConfigError, Dialect, Layout, RenderOptions, RenderedConfig, SecretsMode,
    TenantSource, env_var_name, render_combined, render_combined_into, render_tenant,
};
use tenant_core::{ChannelKind, TenantStatus};

#[path = "../fixture/mod.rs"]
mod fixture;

use fixture::{Owned, channel, creds, tenant};

mod base;
mod bridge;
mod canonical;
mod channels;
mod incremental;
mod secrets;
mod validation;

fn opts(dialect: Dialect, secrets: SecretsMode) -> RenderOptions {
    RenderOptions {
        dialect,
        secrets,
        ..RenderOptions::default()
    }
}

/// Renders `owned` and parses the document, checking that it is canonical in both layouts:
/// compact is exactly `serde_json::to_string` of itself, pretty exactly `to_string_pretty`.
fn doc(owned: &[Owned], o: &RenderOptions) -> Value {
    let sources = fixture::sources(owned);
    let rendered = render_combined(&sources, o).unwrap();
    let v: Value = serde_json::from_str(&rendered.json).unwrap();
    assert_eq!(rendered.json, serde_json::to_string(&v).unwrap() + "\n");
    let pretty = RenderOptions {
        layout: Layout::Pretty,
        ..o.clone()
    };
    let pretty = render_combined(&sources, &pretty).unwrap();
    assert_eq!(
        pretty.json,
        serde_json::to_string_pretty(&v).unwrap() + "\n"
    );
    assert_eq!(pretty.env_file, rendered.env_file);
    v
}

fn one(status: TenantStatus, channels: &[(ChannelKind, bool, Value)]) -> Vec<Owned> {
    let t = tenant(0x0bad_cafe, "Acme", status);
    let channels = channels
        .iter()
        .map(|(k, on, c)| channel(&t, *k, *on, None, c.clone()))
        .collect();
    vec![Owned {
        tenant: t,
        channels,
    }]
}
