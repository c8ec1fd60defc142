//! The rendering rules, checked on parsed output.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use tenant_configgen::{
    BaseConfig, ConfigError, Dialect, RenderOptions, SecretsMode, TenantSource, env_var_name,
    render_combined, render_tenant,
};
use tenant_core::{ChannelKind, TenantStatus};

#[path = "fixture/mod.rs"]
mod fixture;

use fixture::{Owned, channel, creds, tenant};

fn opts(dialect: Dialect, secrets: SecretsMode) -> RenderOptions {
    RenderOptions {
        dialect,
        secrets,
        ..RenderOptions::default()
    }
}

fn doc(owned: &[Owned], o: &RenderOptions) -> Value {
    let rendered = render_combined(&fixture::sources(owned), o).unwrap();
    let v: Value = serde_json::from_str(&rendered.json).unwrap();
    // Canonical form: exactly what serde_json pretty-prints, keys sorted.
    assert_eq!(
        rendered.json,
        serde_json::to_string_pretty(&v).unwrap() + "\n"
    );
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

#[test]
fn suspended_tenants_are_left_out() {
    let owned = one(
        TenantStatus::Suspended,
        &[(ChannelKind::Telegram, true, creds(ChannelKind::Telegram, 1))],
    );
    let v = doc(&owned, &RenderOptions::default());
    // No agent at all: no `entries`/`ownership` (the gateway rejects an empty explicit map).
    assert_eq!(
        v["agents"],
        json!({"defaults": {"heartbeat": {"every": "0m"}}})
    );
    assert_eq!(v["bindings"], json!([]));
    assert_eq!(v["channels"], json!({}));
    assert_eq!(v["session"]["dmScope"], "per-account-channel-peer");
}

#[test]
fn only_served_channels_are_rendered_but_the_agent_stays() {
    let owned = one(
        TenantStatus::Active,
        &[
            (
                ChannelKind::Telegram,
                false,
                creds(ChannelKind::Telegram, 1),
            ),
            (ChannelKind::Discord, true, json!({})),
            (
                ChannelKind::Slack,
                true,
                json!({"mode": "http", "botToken": "xoxb-1"}),
            ),
        ],
    );
    let v = doc(&owned, &RenderOptions::default());
    assert_eq!(
        v["agents"]["entries"]["agent-0badcafe"],
        json!({
            "name": "Acme",
            "workspace": "/var/lib/openclaw/workspaces/agent-0badcafe",
            "agentDir": "/var/lib/openclaw/agents/agent-0badcafe/agent",
        })
    );
    assert_eq!(v["bindings"], json!([]));
    assert_eq!(v["channels"], json!({}));
}

#[test]
fn every_kind_gets_the_gateway_field_names() {
    let owned = one(
        TenantStatus::Active,
        &[
            (ChannelKind::Telegram, true, json!({"botToken": "1:tg"})),
            (
                ChannelKind::Discord,
                true,
                json!({"token": "dc", "applicationId": "42"}),
            ),
            (
                ChannelKind::Slack,
                true,
                json!({"botToken": "xoxb-b", "appToken": "xapp-a", "signingSecret": "unused"}),
            ),
            (ChannelKind::Whatsapp, true, json!({})),
            (
                ChannelKind::Signal,
                true,
                json!({"account": "+15551234567"}),
            ),
        ],
    );
    let v = doc(&owned, &RenderOptions::default());
    let acc = |k: &str| v["channels"][k]["accounts"]["tenant-0badcafe"].clone();
    assert_eq!(acc("telegram"), json!({"name": "Acme", "botToken": "1:tg"}));
    assert_eq!(
        acc("discord"),
        json!({"name": "Acme", "token": "dc", "applicationId": "42"})
    );
    // The mode is explicit, and a socket account carries no signing secret.
    assert_eq!(
        acc("slack"),
        json!({"name": "Acme", "mode": "socket", "botToken": "xoxb-b", "appToken": "xapp-a"})
    );
    assert_eq!(
        acc("whatsapp"),
        json!({"name": "Acme", "authDir": "/var/lib/openclaw/whatsapp/tenant-0badcafe"})
    );
    assert_eq!(
        acc("signal"),
        json!({"name": "Acme", "account": "+15551234567"})
    );
    let kinds: Vec<_> = v["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            assert_eq!(b["agentId"], "agent-0badcafe");
            assert_eq!(b["match"]["accountId"], "tenant-0badcafe");
            b["match"]["channel"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        kinds,
        ["discord", "signal", "slack", "telegram", "whatsapp"]
    );
}

#[test]
fn slack_http_gets_its_own_webhook_path_and_no_app_token() {
    let owned = one(
        TenantStatus::Active,
        &[(
            ChannelKind::Slack,
            true,
            json!({"mode": "http", "botToken": "xoxb-b", "appToken": "xapp-stale", "signingSecret": "sig"}),
        )],
    );
    let v = doc(&owned, &RenderOptions::default());
    assert_eq!(
        v["channels"]["slack"]["accounts"]["tenant-0badcafe"],
        json!({"name": "Acme", "mode": "http", "botToken": "xoxb-b", "signingSecret": "sig",
               "webhookPath": "/slack/events/tenant-0badcafe"})
    );
}

#[test]
fn display_name_names_the_account() {
    let t = tenant(1, "Tenant", TenantStatus::Active);
    let c = channel(
        &t,
        ChannelKind::Telegram,
        true,
        Some("Support bot"),
        creds(ChannelKind::Telegram, 1),
    );
    let owned = vec![Owned {
        tenant: t,
        channels: vec![c],
    }];
    let v = doc(&owned, &RenderOptions::default());
    assert_eq!(
        v["channels"]["telegram"]["accounts"]["tenant-00000001"]["name"],
        "Support bot"
    );
    assert_eq!(v["agents"]["entries"]["agent-00000001"]["name"], "Tenant");
}

#[test]
fn env_mode_writes_references_and_an_env_file() {
    let owned = one(
        TenantStatus::Active,
        &[
            (ChannelKind::Telegram, true, json!({"botToken": "1:tg"})),
            (
                ChannelKind::Discord,
                true,
                json!({"token": "it's", "applicationId": "42"}),
            ),
            (
                ChannelKind::Signal,
                true,
                json!({"account": "+15551234567"}),
            ),
        ],
    );
    let o = opts(Dialect::Current, SecretsMode::Env);
    let rendered = render_combined(&fixture::sources(&owned), &o).unwrap();
    let v: Value = serde_json::from_str(&rendered.json).unwrap();
    let acc = |k: &str| v["channels"][k]["accounts"]["tenant-0badcafe"].clone();
    assert_eq!(
        acc("telegram")["botToken"],
        "${TELEGRAM_BOT_TOKEN_TENANT_0BADCAFE}"
    );
    assert_eq!(acc("discord")["token"], "${DISCORD_TOKEN_TENANT_0BADCAFE}");
    assert_eq!(
        acc("discord")["applicationId"],
        "42",
        "not secret: stays inline"
    );
    assert_eq!(
        acc("signal")["account"],
        "${SIGNAL_ACCOUNT_TENANT_0BADCAFE}"
    );
    assert!(!rendered.json.contains("1:tg"), "no secret in the document");
    let env = rendered.env_file.unwrap();
    assert!(env.starts_with('#'));
    let lines: Vec<_> = env.lines().skip(1).collect();
    assert_eq!(
        lines,
        [
            "DISCORD_TOKEN_TENANT_0BADCAFE='it'\\''s'",
            "SIGNAL_ACCOUNT_TENANT_0BADCAFE=+15551234567",
            "TELEGRAM_BOT_TOKEN_TENANT_0BADCAFE=1:tg",
        ]
    );
}

#[test]
fn secret_ref_mode_writes_secret_refs_where_accepted() {
    let owned = one(
        TenantStatus::Active,
        &[
            (ChannelKind::Telegram, true, json!({"botToken": "1:tg"})),
            (
                ChannelKind::Signal,
                true,
                json!({"account": "+15551234567"}),
            ),
        ],
    );
    let rendered = render_combined(
        &fixture::sources(&owned),
        &opts(Dialect::Current, SecretsMode::SecretRef),
    )
    .unwrap();
    let v: Value = serde_json::from_str(&rendered.json).unwrap();
    assert_eq!(
        v["channels"]["telegram"]["accounts"]["tenant-0badcafe"]["botToken"],
        json!({"source": "env", "provider": "default", "id": "TELEGRAM_BOT_TOKEN_TENANT_0BADCAFE"})
    );
    // The gateway's schema has a plain string here.
    assert_eq!(
        v["channels"]["signal"]["accounts"]["tenant-0badcafe"]["account"],
        "${SIGNAL_ACCOUNT_TENANT_0BADCAFE}"
    );
    assert!(
        rendered
            .env_file
            .unwrap()
            .contains("TELEGRAM_BOT_TOKEN_TENANT_0BADCAFE=1:tg\n")
    );
    let legacy = render_combined(
        &fixture::sources(&owned),
        &opts(Dialect::Legacy, SecretsMode::SecretRef),
    );
    assert!(matches!(
        legacy,
        Err(ConfigError::UnsupportedSecretsMode { .. })
    ));
}

#[test]
fn inline_mode_has_no_env_file() {
    let owned = one(
        TenantStatus::Active,
        &[(ChannelKind::Telegram, true, json!({"botToken": "1:tg"}))],
    );
    let rendered = render_combined(&fixture::sources(&owned), &RenderOptions::default()).unwrap();
    assert!(rendered.env_file.is_none());
    assert!(
        !format!("{rendered:?}").contains("1:tg"),
        "Debug shows sizes only"
    );
}

#[test]
fn legacy_dialect_writes_an_agent_list() {
    let owned = one(
        TenantStatus::Active,
        &[(ChannelKind::Telegram, true, json!({"botToken": "1:tg"}))],
    );
    let v = doc(&owned, &opts(Dialect::Legacy, SecretsMode::Inline));
    assert_eq!(
        v["agents"],
        json!({"list": [{
            "id": "agent-0badcafe", "name": "Acme",
            "workspace": "/var/lib/openclaw/workspaces/agent-0badcafe",
            "agentDir": "/var/lib/openclaw/agents/agent-0badcafe/agent",
        }]})
    );
    let current = doc(&owned, &RenderOptions::default());
    assert_eq!(current["agents"]["ownership"], "explicit");
    assert_eq!(current["agents"]["defaults"]["heartbeat"]["every"], "0m");
    assert!(current["agents"].get("list").is_none());
}

#[test]
fn per_tenant_and_combined_agree_on_the_tenant() {
    let owned = fixture::varied();
    let sources = fixture::sources(&owned);
    let o = RenderOptions::default();
    let combined: Value =
        serde_json::from_str(&render_combined(&sources, &o).unwrap().json).unwrap();
    for s in &sources {
        let single: Value = serde_json::from_str(&render_tenant(s, &o).unwrap().json).unwrap();
        let agent = s.tenant.agent_id.as_str();
        if s.tenant.status == TenantStatus::Active {
            let entries = single["agents"]["entries"].as_object().unwrap();
            assert_eq!(entries.len(), 1);
            assert_eq!(entries[agent], combined["agents"]["entries"][agent]);
        } else {
            assert!(single["agents"].get("entries").is_none());
        }
        for b in single["bindings"].as_array().unwrap() {
            assert_eq!(b["agentId"], agent);
            assert!(combined["bindings"].as_array().unwrap().contains(b));
        }
    }
}

#[test]
fn output_is_independent_of_input_order() {
    let owned = fixture::varied();
    let mut sources = fixture::sources(&owned);
    let o = opts(Dialect::Current, SecretsMode::Env);
    let first = render_combined(&sources, &o).unwrap();
    // Deterministic shuffles: reversals and rotations of the tenants and of each one's channels.
    let mut reversed_channels: Vec<Vec<_>> = owned.iter().map(|o| o.channels.clone()).collect();
    for c in &mut reversed_channels {
        c.reverse();
    }
    for round in 0..sources.len() {
        sources.rotate_left(1);
        if round % 2 == 1 {
            sources.reverse();
        }
        let mixed: Vec<TenantSource<'_>> = sources
            .iter()
            .map(|s| {
                let i = owned
                    .iter()
                    .position(|o| o.tenant.id == s.tenant.id)
                    .unwrap();
                TenantSource {
                    tenant: s.tenant,
                    channels: if round % 3 == 0 {
                        &reversed_channels[i]
                    } else {
                        s.channels
                    },
                }
            })
            .collect();
        assert_eq!(render_combined(&mixed, &o).unwrap(), first, "round {round}");
    }
}

#[test]
fn names_are_escaped_for_json_and_for_env_substitution() {
    let name = "Ünï \"q\" \\ ${HOME} $${X} ${lower} 🦀 </script>";
    let t = tenant(7, name, TenantStatus::Active);
    let c = channel(
        &t,
        ChannelKind::Discord,
        true,
        Some("${DISCORD_TOKEN}"),
        json!({"token": "a${B}c"}),
    );
    let owned = vec![Owned {
        tenant: t,
        channels: vec![c],
    }];
    let v = doc(&owned, &RenderOptions::default());
    // The gateway turns `$${NAME}` back into `${NAME}` and leaves everything else alone.
    assert_eq!(
        v["agents"]["entries"]["agent-00000007"]["name"],
        "Ünï \"q\" \\ $${HOME} $$${X} ${lower} 🦀 </script>"
    );
    let acc = &v["channels"]["discord"]["accounts"]["tenant-00000007"];
    assert_eq!(acc["name"], "$${DISCORD_TOKEN}");
    assert_eq!(acc["token"], "a$${B}c");
}

#[test]
fn validation_errors_name_the_tenant() {
    // Two tenants whose ids share the first 32 bits share agent and account ids.
    let a = tenant(0xabcd_0001, "A", TenantStatus::Active);
    let mut b = tenant(0xabcd_0001, "B", TenantStatus::Active);
    b.id = fixture::tenant_id(0xabcd_0002);
    b.agent_id = a.agent_id.clone();
    let owned = vec![
        Owned {
            tenant: a.clone(),
            channels: vec![],
        },
        Owned {
            tenant: b.clone(),
            channels: vec![],
        },
    ];
    let e = render_combined(&fixture::sources(&owned), &RenderOptions::default()).unwrap_err();
    assert!(matches!(e, ConfigError::DuplicateAgent { .. }), "{e}");
    assert!(
        e.to_string().contains(&a.id.to_string()) && e.to_string().contains(&b.id.to_string()),
        "{e}"
    );

    // Same account id on one channel.
    let mut c = tenant(0xabcd_0003, "C", TenantStatus::Active);
    c.account_id = a.account_id.clone();
    let owned = vec![
        Owned {
            channels: vec![channel(
                &a,
                ChannelKind::Telegram,
                true,
                None,
                creds(ChannelKind::Telegram, 1),
            )],
            tenant: a.clone(),
        },
        Owned {
            channels: vec![channel(
                &c,
                ChannelKind::Telegram,
                true,
                None,
                creds(ChannelKind::Telegram, 2),
            )],
            tenant: c.clone(),
        },
    ];
    let e = render_combined(&fixture::sources(&owned), &RenderOptions::default()).unwrap_err();
    assert!(
        matches!(
            e,
            ConfigError::DuplicateAccount {
                channel: ChannelKind::Telegram,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("tenant-abcd0001"), "{e}");

    // Two served channels of one kind on one tenant.
    let owned = vec![Owned {
        channels: vec![
            channel(
                &a,
                ChannelKind::Discord,
                true,
                None,
                creds(ChannelKind::Discord, 1),
            ),
            channel(
                &a,
                ChannelKind::Discord,
                true,
                None,
                creds(ChannelKind::Discord, 2),
            ),
        ],
        tenant: a.clone(),
    }];
    let e = render_combined(&fixture::sources(&owned), &RenderOptions::default()).unwrap_err();
    assert!(
        matches!(
            e,
            ConfigError::DuplicateChannel {
                channel: ChannelKind::Discord,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains("tenant-abcd0001") && e.to_string().contains(&a.id.to_string()),
        "{e}"
    );

    // A channel passed with the wrong tenant.
    let owned = vec![Owned {
        channels: vec![channel(
            &c,
            ChannelKind::Signal,
            true,
            None,
            creds(ChannelKind::Signal, 1),
        )],
        tenant: a.clone(),
    }];
    let e = render_tenant(&fixture::sources(&owned)[0], &RenderOptions::default()).unwrap_err();
    assert!(matches!(e, ConfigError::ForeignChannel { .. }), "{e}");
    assert!(e.to_string().contains(&c.id.to_string()), "{e}");
}

#[test]
fn base_is_merged_under_the_generated_sections() {
    let base = BaseConfig::parse(
        "{gateway: {port: 18789}, agents: {defaults: {model: 'x'}, entries: {ops: {name: 'Ops'}}},
          bindings: [{agentId: 'ops', match: {channel: 'telegram', accountId: 'zz-ops'}}],
          channels: {telegram: {dmPolicy: 'pairing', accounts: {'zz-ops': {name: 'Ops'}}}, irc: {enabled: false}},
          session: {reset: {mode: 'daily'}}}",
    )
    .unwrap();
    let owned = one(
        TenantStatus::Active,
        &[(ChannelKind::Telegram, true, json!({"botToken": "1:tg"}))],
    );
    let o = RenderOptions {
        base: Some(base),
        ..RenderOptions::default()
    };
    let v = doc(&owned, &o);
    assert_eq!(v["gateway"]["port"], 18789);
    assert_eq!(
        v["agents"]["defaults"],
        json!({"model": "x", "heartbeat": {"every": "0m"}})
    );
    let entries: Vec<_> = v["agents"]["entries"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(entries, ["agent-0badcafe", "ops"]);
    assert_eq!(v["bindings"][0]["agentId"], "ops");
    assert_eq!(v["bindings"][1]["agentId"], "agent-0badcafe");
    let tg = v["channels"]["telegram"].as_object().unwrap();
    assert_eq!(tg["dmPolicy"], "pairing");
    let accounts: Vec<_> = tg["accounts"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(accounts, ["tenant-0badcafe", "zz-ops"]);
    assert_eq!(v["channels"]["irc"], json!({"enabled": false}));
    assert_eq!(
        v["session"],
        json!({"dmScope": "per-account-channel-peer", "reset": {"mode": "daily"}})
    );

    // A base heartbeat or system agent is kept as the operator wrote it.
    let base = BaseConfig::parse("{agents: {defaults: {systemAgent: {agentId: 'ops'}}}}").unwrap();
    let v = doc(
        &owned,
        &RenderOptions {
            base: Some(base),
            ..RenderOptions::default()
        },
    );
    assert_eq!(
        v["agents"]["defaults"],
        json!({"systemAgent": {"agentId": "ops"}})
    );
}

#[test]
fn base_conflicts_are_errors_naming_the_key() {
    let owned = one(TenantStatus::Active, &[]);
    let err = |text: &str, dialect: Dialect| {
        let base = match BaseConfig::parse(text) {
            Ok(b) => b,
            Err(e) => return e,
        };
        let o = RenderOptions {
            base: Some(base),
            ..opts(dialect, SecretsMode::Inline)
        };
        render_combined(&fixture::sources(&owned), &o).unwrap_err()
    };
    let path = |e: ConfigError| match e {
        ConfigError::BaseConflict { path, .. } => path,
        other => panic!("{other}"),
    };
    assert_eq!(
        path(err("{session: {dmScope: 'main'}}", Dialect::Current)),
        "session.dmScope"
    );
    assert_eq!(
        path(err("{agents: {ownership: 'explicit'}}", Dialect::Current)),
        "agents.ownership"
    );
    assert_eq!(
        path(err(
            "{agents: {entries: {'agent-0badcafe': {}}}}",
            Dialect::Current
        )),
        "agents.entries.agent-0badcafe"
    );
    assert_eq!(
        path(err("{agents: {list: []}}", Dialect::Current)),
        "agents.list"
    );
    assert_eq!(
        path(err("{agents: {entries: {}}}", Dialect::Legacy)),
        "agents.entries"
    );
    assert_eq!(
        path(err(
            "{agents: {entries: {ops: {agentDir: '/var/lib/openclaw/agents/ops'}}}}",
            Dialect::Current
        )),
        "agents.entries.ops.agentDir"
    );
    assert_eq!(
        path(err(
            "{channels: {signal: {accounts: {'tenant-0badcafe': {}}}}}",
            Dialect::Current
        )),
        "channels.signal.accounts.tenant-0badcafe"
    );
    assert_eq!(
        path(err(
            "{agents: {defaults: {heartbeat: 5}}}",
            Dialect::Current
        )),
        "agents.defaults.heartbeat"
    );
}

#[test]
fn env_var_names_are_documented_form() {
    let t = tenant(0x0bad_cafe, "Acme", TenantStatus::Active);
    assert_eq!(
        env_var_name(ChannelKind::Slack, "appToken", &t.account_id),
        "SLACK_APP_TOKEN_TENANT_0BADCAFE"
    );
}

#[test]
fn env_file_reads_back_exactly_in_sh() {
    let t = tenant(9, "Acme", TenantStatus::Active);
    let token = "we'ird$HOME\"`x`#;|&*?~!{}[]()<>\\";
    let c = channel(
        &t,
        ChannelKind::Discord,
        true,
        None,
        json!({"token": token}),
    );
    let owned = vec![Owned {
        tenant: t,
        channels: vec![c],
    }];
    let rendered = render_combined(
        &fixture::sources(&owned),
        &opts(Dialect::Current, SecretsMode::Env),
    )
    .unwrap();
    let dir = std::env::temp_dir().join(format!("configgen-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("gateway.env");
    std::fs::write(&file, rendered.env_file.unwrap()).unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("set -a; . \"$1\"; printf %s \"$DISCORD_TOKEN_TENANT_00000009\"")
        .arg("sh")
        .arg(&file)
        .env_clear()
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), token);
}
