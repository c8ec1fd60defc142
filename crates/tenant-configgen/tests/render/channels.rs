//! Which tenants and channels a document carries, and the gateway field names.

use super::*;

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
