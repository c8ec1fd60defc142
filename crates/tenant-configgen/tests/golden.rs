//! Golden files: the exact output for the fixed fixture. Regenerate with
//! `UPDATE_GOLDEN=1 cargo test -p tenant-configgen --test golden`, then review the diff.
//!
//! The files hold the pretty layout, so that a change reads as a line diff; each test also
//! renders the compact layout (what is served) and checks it is exactly the golden document
//! without whitespace.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use serde_json::Value;
use tenant_configgen::{
    BaseConfig, BridgeOptions, Dialect, IncrementalConfig, Layout, Mode, RenderOptions,
    RenderedConfig, SecretsMode, TenantSource, render_combined, render_tenant,
};
use tenant_core::Secret;

#[path = "fixture/mod.rs"]
mod fixture;

fn check(name: &str, text: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
    if expected != text {
        let line = expected
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| "length".to_owned(), |i| format!("line {}", i + 1));
        panic!(
            "{name} differs from the golden file at {line}; rerun with UPDATE_GOLDEN=1 if intended"
        );
    }
}

/// Checks the pretty rendering against the golden files and the compact one against them.
fn golden(stem: &str, render: impl Fn(&RenderOptions) -> RenderedConfig, opts: &RenderOptions) {
    let pretty = RenderOptions {
        layout: Layout::Pretty,
        ..opts.clone()
    };
    let rendered = render(&pretty);
    let compact = render(&RenderOptions {
        layout: Layout::Compact,
        ..opts.clone()
    });
    let v: Value = serde_json::from_str(&rendered.json).unwrap();
    assert_eq!(
        compact.json,
        serde_json::to_string(&v).unwrap() + "\n",
        "{stem}: compact differs from pretty"
    );
    assert_eq!(compact.env_file, rendered.env_file, "{stem}");
    check(&format!("{stem}.json"), &rendered.json);
    match &rendered.env_file {
        Some(env) => check(&format!("{stem}.env"), env),
        None => assert!(
            !PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join(format!("tests/golden/{stem}.env"))
                .exists(),
            "stale {stem}.env"
        ),
    }
}

/// The combined document, rendered from scratch; checked to be also exactly what the
/// incrementally kept document assembles for the same tenants.
fn combined<'a>(sources: &'a [TenantSource<'a>]) -> impl Fn(&RenderOptions) -> RenderedConfig + 'a {
    move |o| {
        let rendered = render_combined(sources, o).unwrap();
        let mut live = IncrementalConfig::new(o.clone(), Mode::Combined).unwrap();
        for s in sources {
            live.upsert(s);
        }
        let assembled = live.render().unwrap().to_vec();
        assert!(assembled == rendered.json.as_bytes(), "incremental differs");
        rendered
    }
}

fn tenant<'a>(source: &'a TenantSource<'a>) -> impl Fn(&RenderOptions) -> RenderedConfig + 'a {
    move |o| render_tenant(source, o).unwrap()
}

fn opts(dialect: Dialect, secrets: SecretsMode) -> RenderOptions {
    RenderOptions {
        dialect,
        secrets,
        ..RenderOptions::default()
    }
}

#[test]
fn combined_documents_match_the_golden_files() {
    let owned = fixture::varied();
    let sources = fixture::sources(&owned);
    for (dialect, secrets) in [
        (Dialect::Current, SecretsMode::Inline),
        (Dialect::Current, SecretsMode::Env),
        (Dialect::Current, SecretsMode::SecretRef),
        (Dialect::Legacy, SecretsMode::Inline),
        (Dialect::Legacy, SecretsMode::Env),
    ] {
        golden(
            &format!("combined-{dialect}-{secrets}"),
            combined(&sources),
            &opts(dialect, secrets),
        );
    }
}

#[test]
fn base_merge_and_per_tenant_match_the_golden_files() {
    let owned = fixture::varied();
    let sources = fixture::sources(&owned);
    let base = BaseConfig::parse(include_str!("fixture/base-current.json5")).unwrap();
    let with_base = RenderOptions {
        base: Some(base),
        ..opts(Dialect::Current, SecretsMode::Inline)
    };
    golden("combined-current-base", combined(&sources), &with_base);
    let base = BaseConfig::parse(include_str!("fixture/base-legacy.json5")).unwrap();
    let with_base = RenderOptions {
        base: Some(base),
        ..opts(Dialect::Legacy, SecretsMode::Inline)
    };
    golden("combined-legacy-base", combined(&sources), &with_base);
    let acme = &sources[0];
    assert_eq!(acme.tenant.account_id.as_str(), "tenant-0badcafe");
    golden(
        "tenant-0badcafe-current-secret-ref",
        tenant(acme),
        &opts(Dialect::Current, SecretsMode::SecretRef),
    );
    let suspended = sources
        .iter()
        .find(|s| s.tenant.status.as_str() == "suspended")
        .unwrap();
    golden(
        "tenant-suspended-current-inline",
        tenant(suspended),
        &opts(Dialect::Current, SecretsMode::Inline),
    );
}

fn bridge() -> Option<BridgeOptions> {
    Some(BridgeOptions {
        plugin_path: "/opt/moltbot-saas/openclaw-bridge".into(),
        url: "https://saas.example.com".into(),
        token: Some(Secret::new("msgw_golden_gateway_token_0123456789abcdef")),
    })
}

#[test]
fn documents_with_the_bridge_match_the_golden_files() {
    let owned = fixture::varied();
    let sources = fixture::sources(&owned);
    let with_bridge = |dialect, secrets| RenderOptions {
        bridge: bridge(),
        ..opts(dialect, secrets)
    };
    golden(
        "combined-current-bridge-secret-ref",
        combined(&sources),
        &with_bridge(Dialect::Current, SecretsMode::SecretRef),
    );
    golden(
        "combined-legacy-bridge-env",
        combined(&sources),
        &with_bridge(Dialect::Legacy, SecretsMode::Env),
    );
    let base = BaseConfig::parse(include_str!("fixture/base-bridge.json5")).unwrap();
    golden(
        "combined-current-bridge-inline-base",
        combined(&sources),
        &RenderOptions {
            base: Some(base),
            ..with_bridge(Dialect::Current, SecretsMode::Inline)
        },
    );
    golden(
        "tenant-0badcafe-legacy-bridge-inline",
        tenant(&sources[0]),
        &with_bridge(Dialect::Legacy, SecretsMode::Inline),
    );
}
