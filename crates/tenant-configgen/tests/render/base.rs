//! The operator's base config: merged under the generated sections, conflicts refused.

use super::*;

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
