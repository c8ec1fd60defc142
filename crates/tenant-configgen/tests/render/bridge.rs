//! The gateway bridge plugin in the document: its load path and entry in every mode, merged
//! with the operator's plugins, in combined and per-tenant documents and the incremental one.

use tenant_configgen::{BRIDGE_TOKEN_VAR, BridgeOptions, IncrementalConfig, Mode};
use tenant_core::Secret;

use super::*;

const TOKEN: &str = "msgw_render_test_gateway_token_0123456789";

fn bridge(token: &str) -> Option<BridgeOptions> {
    Some(BridgeOptions {
        plugin_path: "/opt/bridge".into(),
        url: "https://saas.example.com/".into(),
        token: Some(Secret::new(token)),
    })
}

fn with_bridge(dialect: Dialect, secrets: SecretsMode) -> RenderOptions {
    RenderOptions {
        bridge: bridge(TOKEN),
        ..opts(dialect, secrets)
    }
}

fn acme() -> Vec<Owned> {
    one(
        TenantStatus::Active,
        &[(ChannelKind::Telegram, true, json!({"botToken": "1:tg"}))],
    )
}

#[test]
fn without_the_bridge_there_is_no_plugins_section() {
    let v = doc(&acme(), &opts(Dialect::Current, SecretsMode::Inline));
    assert!(v.get("plugins").is_none());
}

#[test]
fn the_token_follows_the_secrets_mode() {
    let owned = acme();
    let entry = |v: &Value| v["plugins"]["entries"]["moltbot-saas-bridge"].clone();
    for dialect in [Dialect::Current, Dialect::Legacy] {
        let v = doc(&owned, &with_bridge(dialect, SecretsMode::Inline));
        assert_eq!(
            entry(&v),
            json!({"enabled": true, "config": {"url": "https://saas.example.com", "token": TOKEN}}),
            "{dialect}"
        );
        assert_eq!(v["plugins"]["load"]["paths"], json!(["/opt/bridge"]));
        let rendered = render_combined(
            &fixture::sources(&owned),
            &with_bridge(dialect, SecretsMode::Inline),
        )
        .unwrap();
        assert!(rendered.env_file.is_none());

        let o = with_bridge(dialect, SecretsMode::Env);
        let rendered = render_combined(&fixture::sources(&owned), &o).unwrap();
        assert!(!rendered.json.contains(TOKEN), "no token in the document");
        let v: Value = serde_json::from_str(&rendered.json).unwrap();
        assert_eq!(
            entry(&v)["config"]["token"],
            "${MOLTBOT_SAAS_GATEWAY_TOKEN}"
        );
        let env = rendered.env_file.unwrap();
        assert_eq!(
            env.lines().last(),
            Some(format!("{BRIDGE_TOKEN_VAR}={TOKEN}").as_str()),
            "after the channels' lines, as in the document"
        );
    }
    let o = with_bridge(Dialect::Current, SecretsMode::SecretRef);
    let rendered = render_combined(&fixture::sources(&owned), &o).unwrap();
    let v: Value = serde_json::from_str(&rendered.json).unwrap();
    assert_eq!(
        entry(&v)["config"]["token"],
        json!({"source": "env", "provider": "default", "id": "MOLTBOT_SAAS_GATEWAY_TOKEN"})
    );
    assert!(rendered.env_file.unwrap().contains(TOKEN));
}

#[test]
fn an_inline_token_is_protected_from_substitution() {
    let o = RenderOptions {
        bridge: bridge("msgw_${HOME}_token_that_is_long_enough_0123"),
        ..opts(Dialect::Current, SecretsMode::Inline)
    };
    let rendered = render_combined(&fixture::sources(&acme()), &o).unwrap();
    assert!(
        rendered.json.contains("msgw_$${HOME}_token"),
        "{}",
        rendered.json
    );
}

#[test]
fn the_operators_plugins_are_kept_and_the_bridge_added() {
    let base = BaseConfig::parse(
        "{plugins: {enabled: true, load: {paths: ['/opt/a', '/opt/bridge'], watch: true}, allow: ['telegram'],
          entries: {a: {enabled: true}, 'moltbot-saas-bridge': {config: {includeContent: false}}}}}",
    )
    .unwrap();
    let o = RenderOptions {
        base: Some(base),
        ..with_bridge(Dialect::Current, SecretsMode::Inline)
    };
    let v = doc(&acme(), &o);
    let p = &v["plugins"];
    assert_eq!(p["enabled"], true);
    assert_eq!(
        p["load"],
        json!({"paths": ["/opt/a", "/opt/bridge"], "watch": true}),
        "not twice"
    );
    assert_eq!(p["allow"], json!(["telegram", "moltbot-saas-bridge"]));
    assert_eq!(p["entries"]["a"], json!({"enabled": true}));
    assert_eq!(
        p["entries"]["moltbot-saas-bridge"]["config"],
        json!({"includeContent": false, "token": TOKEN, "url": "https://saas.example.com"})
    );
    // An empty allow list restricts nothing: it stays empty.
    let base = BaseConfig::parse("{plugins: {allow: []}}").unwrap();
    let o = RenderOptions {
        base: Some(base),
        ..with_bridge(Dialect::Current, SecretsMode::Inline)
    };
    assert_eq!(doc(&acme(), &o)["plugins"]["allow"], json!([]));
}

#[test]
fn conflicting_bases_and_bad_options_are_refused() {
    for (base, path) in [
        ("{plugins: {enabled: false}}", "plugins.enabled"),
        (
            "{plugins: {entries: {'moltbot-saas-bridge': {enabled: false}}}}",
            "plugins.entries.moltbot-saas-bridge.enabled",
        ),
        (
            "{plugins: {entries: {'moltbot-saas-bridge': {config: {token: 'x'}}}}}",
            "plugins.entries.moltbot-saas-bridge.config.token",
        ),
    ] {
        let o = RenderOptions {
            base: Some(BaseConfig::parse(base).unwrap()),
            ..with_bridge(Dialect::Current, SecretsMode::Inline)
        };
        let e = render_combined(&fixture::sources(&acme()), &o).unwrap_err();
        assert!(
            matches!(&e, ConfigError::BaseConflict { path: p, .. } if p == path),
            "{base}: {e}"
        );
        // Without the bridge the same base passes through untouched.
        let o = RenderOptions { bridge: None, ..o };
        assert!(
            render_combined(&fixture::sources(&acme()), &o).is_ok(),
            "{base}"
        );
    }
    let o = RenderOptions {
        bridge: Some(BridgeOptions {
            plugin_path: "relative/bridge".into(),
            url: "https://saas.example.com".into(),
            token: Some(Secret::new(TOKEN)),
        }),
        ..opts(Dialect::Current, SecretsMode::Inline)
    };
    let e = render_combined(&fixture::sources(&acme()), &o).unwrap_err();
    assert!(
        matches!(
            e,
            ConfigError::InvalidOption {
                option: "bridge.plugin_path",
                ..
            }
        ),
        "{e}"
    );
    assert!(IncrementalConfig::new(o, Mode::Combined).is_err());
}

#[test]
fn per_tenant_and_incremental_documents_carry_it_too() {
    let mut owned = acme();
    owned.extend(one(TenantStatus::Suspended, &[]).into_iter().map(|mut o| {
        o.tenant = tenant(0x1234_5678, "Paused", TenantStatus::Suspended);
        o
    }));
    let sources = fixture::sources(&owned);
    for o in [
        with_bridge(Dialect::Current, SecretsMode::SecretRef),
        with_bridge(Dialect::Legacy, SecretsMode::Env),
    ] {
        for s in &sources {
            let r = render_tenant(s, &o).unwrap();
            let v: Value = serde_json::from_str(&r.json).unwrap();
            assert_eq!(
                v["plugins"]["entries"]["moltbot-saas-bridge"]["enabled"],
                true,
                "{} ({})",
                s.tenant.name.as_str(),
                s.tenant.status.as_str()
            );
            assert!(r.env_file.unwrap().contains(TOKEN));
        }
        let mut live = IncrementalConfig::new(o.clone(), Mode::Combined).unwrap();
        for s in &sources {
            live.upsert(s);
        }
        let served = live.render().unwrap().to_vec();
        let full = render_combined(&sources, &o).unwrap();
        assert!(served == full.json.as_bytes(), "served equals rendered");
        assert!(!full.json.contains(TOKEN));
        let mut map = IncrementalConfig::new(o, Mode::PerTenant).unwrap();
        for s in &sources {
            map.upsert(s);
        }
        let map: Value = serde_json::from_slice(&map.render().unwrap().to_vec()).unwrap();
        assert_eq!(
            map["tenant-0badcafe"]["plugins"]["load"]["paths"],
            json!(["/opt/bridge"])
        );
    }
}

#[test]
fn a_withheld_token_is_a_reference_in_every_mode() {
    let owned = acme();
    for (dialect, secrets) in [
        (Dialect::Current, SecretsMode::Inline),
        (Dialect::Legacy, SecretsMode::Env),
        (Dialect::Current, SecretsMode::SecretRef),
    ] {
        let full = with_bridge(dialect, secrets);
        let o = RenderOptions {
            bridge: full.bridge.as_ref().map(BridgeOptions::withholding_token),
            ..full.clone()
        };
        let r = render_combined(&fixture::sources(&owned), &o).unwrap();
        assert!(!r.json.contains(TOKEN), "{secrets}");
        assert!(
            !r.env_file
                .clone()
                .unwrap_or_default()
                .contains(BRIDGE_TOKEN_VAR),
            "{secrets}: no env line for a token not given"
        );
        let v: Value = serde_json::from_str(&r.json).unwrap();
        let token = &v["plugins"]["entries"]["moltbot-saas-bridge"]["config"]["token"];
        match secrets {
            SecretsMode::SecretRef => assert_eq!(token["id"], BRIDGE_TOKEN_VAR),
            _ => assert_eq!(token, "${MOLTBOT_SAAS_GATEWAY_TOKEN}"),
        }
        // Everything else is the same document.
        let whole: Value = serde_json::from_str(
            &render_combined(&fixture::sources(&owned), &full)
                .unwrap()
                .json,
        )
        .unwrap();
        let strip = |mut v: Value| {
            v["plugins"]["entries"]["moltbot-saas-bridge"]["config"]["token"] = Value::Null;
            v
        };
        assert_eq!(strip(v), strip(whole));
    }
}
