//! The gateway bridge plugin from the control plane's side: the served configs enable it
//! (with the gateway token for gateways and operators, withheld from tenants), and ingest
//! accepts the events it sends, as the real gateway gives them (shapes observed with openclaw
//! 2026.9.6; the end-to-end run with the real gateway is `scripts/openclaw/e2e-bridge.sh`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use moltbot_saas_tests::{TestDb, spawn_app_with, test_settings};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenant_configgen::{BRIDGE_PLUGIN_ID, BridgeOptions, SecretsMode};

use crate::webhooks_support;

const PLUGIN_PATH: &str = "/opt/moltbot-saas/openclaw-bridge";

fn entry(doc: &Value) -> &Value {
    &doc["plugins"]["entries"][BRIDGE_PLUGIN_ID]
}

#[tokio::test]
async fn served_configs_enable_the_bridge_and_only_gateways_and_operators_see_its_token() {
    let db = TestDb::new();
    let mut settings = test_settings(&db);
    settings.render.bridge = Some(BridgeOptions {
        plugin_path: PLUGIN_PATH.into(),
        url: "https://saas.example.com".into(),
        token: settings.gateway_token.clone(),
    });
    let app = spawn_app_with(settings).await;
    let gw = app.gateway_token.clone();
    let tenant = app.create_tenant("Bridged").await;
    let id = tenant["id"].as_str().unwrap();
    let api_key = tenant["apiKey"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/tenants/{id}/channels"),
            &json!({"channel": "telegram", "credentials": {"botToken": "123456789:AAbridgeTestToken0123456789"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    let combined = app
        .request_as(Some(&gw), Method::GET, "/config", None)
        .await;
    assert_eq!(combined.status, StatusCode::OK, "{}", combined.text);
    assert_eq!(
        combined.body["plugins"]["load"]["paths"],
        json!([PLUGIN_PATH])
    );
    assert_eq!(
        entry(&combined.body),
        &json!({"enabled": true, "config": {"url": "https://saas.example.com", "token": gw}})
    );
    let map = app
        .request_as(Some(&gw), Method::GET, "/config?mode=per-tenant", None)
        .await;
    let account = tenant["accountId"].as_str().unwrap();
    assert_eq!(entry(&map.body[account])["config"]["token"], gw.as_str());

    // The tenant's own document: the operator sees the token, the tenant does not.
    let path = format!("/tenants/{id}/config");
    let operator = app.get(&path).await;
    assert_eq!(entry(&operator.body)["config"]["token"], gw.as_str());
    let own = app
        .request_as(Some(&api_key), Method::GET, &path, None)
        .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    assert_eq!(
        entry(&own.body)["config"]["token"],
        "${MOLTBOT_SAAS_GATEWAY_TOKEN}"
    );
    assert!(
        !own.text.contains(&gw),
        "the gateway token is not the tenant's"
    );
    assert_eq!(
        own.body["plugins"]["load"],
        operator.body["plugins"]["load"]
    );
}

#[tokio::test]
async fn in_secret_ref_mode_the_served_config_refers_to_the_token() {
    let db = TestDb::new();
    let mut settings = test_settings(&db);
    settings.render.secrets = SecretsMode::SecretRef;
    settings.render.bridge = Some(BridgeOptions {
        plugin_path: PLUGIN_PATH.into(),
        url: "http://127.0.0.1:3000".into(),
        token: settings.gateway_token.clone(),
    });
    let app = spawn_app_with(settings).await;
    let gw = app.gateway_token.clone();
    app.create_tenant("Refs").await;
    let r = app
        .request_as(Some(&gw), Method::GET, "/config", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        entry(&r.body)["config"]["token"],
        json!({"source": "env", "provider": "default", "id": "MOLTBOT_SAAS_GATEWAY_TOKEN"})
    );
    assert!(!r.text.contains(&gw));
}

#[tokio::test]
async fn ingest_accepts_what_the_bridge_sends() {
    let db = TestDb::new();
    let app = webhooks_support::app(&db).await;
    let tenant = app.create_tenant("Events From The Bridge").await;
    let id = tenant["id"].as_str().unwrap();
    let agent = tenant["agentId"].as_str().unwrap();
    let account = tenant["accountId"].as_str().unwrap();
    let key = format!("agent:{agent}:telegram:{account}:direct:4242");
    let gw = Some(app.gateway_token.as_str());
    let post = |body: Value| {
        let app = &app;
        async move {
            app.request_as(gw, Method::POST, "/events", Some(&body))
                .await
        }
    };
    let events = [
        // `chat.send` into a tenant's session: channel webchat, no account id.
        json!({"id": "openclaw:message.received:6c369c8cedb9153e8ab8e0cfd7a3ecadd1c6cf99",
               "type": "message.received", "sessionKey": key, "agentId": agent, "channel": "webchat",
               "timestamp": "2026-12-05T15:32:45.264Z",
               "data": {"messageId": "t-9", "conversationId": key, "senderId": "cli", "surface": "webchat", "text": "hello bridge"}}),
        json!({"id": "openclaw:session.started:10e9786c3448c038546a6c8f36e047ff240740e2",
               "type": "session.started", "sessionKey": key, "agentId": agent,
               "timestamp": "2026-12-05T15:32:45.498Z", "data": {"sessionId": "8b9be0f0-0afa-4011-b58a-4199efdd8ce2"}}),
        // Telegram's message_sent: account and conversation, no session key.
        json!({"id": "openclaw:message.sent:0f3c5e0a8c1d2b3a4e5f60718293a4b5c6d7e8f9",
               "type": "message.sent", "accountId": account, "channel": "telegram",
               "timestamp": "2026-12-05T15:32:46.000Z",
               "data": {"messageId": "101", "conversationId": "4242", "to": "4242", "success": true, "text": "pong"}}),
        // A session of the agent's own (a subagent): attributed by its agent, no session row.
        json!({"id": "openclaw:session.started:aa", "type": "session.started",
               "sessionKey": format!("agent:{agent}:subagent:9f1c2d"), "agentId": agent,
               "timestamp": "2026-12-05T15:32:47.000Z", "data": {"sessionId": "s-sub"}}),
        json!({"id": "openclaw:session.ended:bb", "type": "session.ended", "sessionKey": key, "agentId": agent,
               "timestamp": "2026-12-05T15:33:00.000Z",
               "data": {"sessionId": "8b9be0f0-0afa-4011-b58a-4199efdd8ce2", "reason": "shutdown", "messageCount": 0}}),
    ];
    for event in &events {
        let r = post(event.clone()).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{event}: {}", r.text);
        assert_eq!(r.body["tenantId"], id);
        assert_eq!(r.body["duplicate"], false);
    }
    // The gateway delivered the first message twice: stored once.
    let again = post(events[0].clone()).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.body["duplicate"], true);

    let sessions = app.get(&format!("/tenants/{id}/sessions")).await;
    let list = sessions.body["sessions"].as_array().unwrap();
    assert_eq!(
        list.len(),
        1,
        "only the channel session is a session row: {list:?}"
    );
    assert_eq!(list[0]["sessionKey"], key.as_str());

    // Still refused: an agent-only key of an agent nobody has, and what is no key at all.
    for (key, field) in [
        ("agent:agent-ffffffff:main", "sessionKey"),
        ("agent:Not Valid:main", "sessionKey"),
    ] {
        let r =
            post(json!({"id": format!("x-{key}"), "type": "session.started", "sessionKey": key}))
                .await;
        r.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(
            r.invalid_fields().contains(&field.to_owned()),
            "{key}: {}",
            r.text
        );
    }
    // An agent-only key must agree with the other identifiers.
    let other = app.create_tenant("Someone Else").await;
    let r = post(json!({"id": "x-mixed", "type": "session.started",
        "sessionKey": format!("agent:{agent}:main"), "accountId": other["accountId"]}))
    .await;
    r.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
}
