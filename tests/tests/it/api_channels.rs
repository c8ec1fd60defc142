//! `/tenants/{id}/channels` through a real server, and the rule that credentials never leave it.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use moltbot_saas_tests::{TestApp, TestDb, spawn_app};
use reqwest::StatusCode;
use serde_json::json;
use tenant_core::{ChannelKind, TenantId};

const TELEGRAM_TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

async fn tenant(app: &TestApp, name: &str) -> String {
    app.create_tenant(name).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn channel_crud_success_paths() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let id = tenant(&app, "Acme").await;
    let base = format!("/tenants/{id}/channels");

    let r = app
        .post(
            &base,
            &json!({
                "channel": "discord",
                "displayName": "Acme Bot",
                "credentials": {"token": "FAKE.discord.token.abcdefgh", "applicationId": "900000001"}
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        r.headers["location"].to_str().unwrap(),
        format!("{base}/discord")
    );
    assert_eq!(r.body["channel"], "discord");
    assert_eq!(r.body["tenantId"], id.as_str());
    assert_eq!(r.body["enabled"], true);
    assert_eq!(r.body["displayName"], "Acme Bot");
    assert_eq!(r.body["state"], "ready");
    assert_eq!(r.body["missingFields"], json!([]));
    assert_eq!(
        r.body["credentials"]["applicationId"],
        json!({"set": true, "required": false, "value": "900000001"}),
        "plain fields are shown in full"
    );
    assert_eq!(
        r.body["credentials"]["token"],
        json!({"set": true, "required": true, "last4": "efgh"})
    );
    assert!(!r.text.contains("FAKE.discord.token"), "{}", r.text);

    let r = app.post(&base, &json!({"channel": "whatsapp"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["state"], "ready", "whatsapp needs no credentials");
    assert_eq!(r.body["credentials"], json!({}));

    let r = app.get(&base).await;
    assert_eq!(r.status, StatusCode::OK);
    let kinds: Vec<&str> = r.body["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["discord", "whatsapp"]);
    assert!(!r.text.contains("FAKE.discord.token"));

    let r = app.get(&format!("{base}/discord")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["displayName"], "Acme Bot");
    assert!(!r.text.contains("FAKE.discord.token"));

    let r = app
        .patch(
            &format!("{base}/discord"),
            &json!({"enabled": false, "displayName": null}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["enabled"], false);
    assert_eq!(r.body["state"], "disabled");
    assert!(r.body.get("displayName").is_none(), "cleared by null");
    assert_eq!(
        r.body["credentials"]["token"]["set"], true,
        "credentials untouched"
    );

    let r = app.delete(&format!("{base}/discord")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    app.get(&format!("{base}/discord"))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    let r = app.get(&base).await;
    assert_eq!(r.body["channels"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn quick_start_body_then_credentials_make_the_channel_ready() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let id = tenant(&app, "Acme").await;
    let base = format!("/tenants/{id}/channels");

    // The prototype's quick-start body.
    let r = app
        .post(&base, &json!({"channel": "telegram", "enabled": true}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["state"], "awaiting_credentials");
    assert_eq!(r.body["missingFields"], json!(["botToken"]));
    assert_eq!(
        r.body["credentials"]["botToken"],
        json!({"set": false, "required": true})
    );

    let r = app
        .patch(
            &format!("{base}/telegram"),
            &json!({"credentials": {"botToken": TELEGRAM_TOKEN}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["state"], "ready");
    assert_eq!(r.body["missingFields"], json!([]));
    assert_eq!(
        r.body["credentials"]["botToken"],
        json!({"set": true, "required": true, "last4": &TELEGRAM_TOKEN[TELEGRAM_TOKEN.len() - 4..]})
    );
    // The token is in no response: not its whole value, not its secret part.
    let secret_part = TELEGRAM_TOKEN.split_once(':').unwrap().1;
    for r in [
        r,
        app.get(&format!("{base}/telegram")).await,
        app.get(&base).await,
    ] {
        assert!(!r.text.contains(TELEGRAM_TOKEN), "{}", r.text);
        assert!(!r.text.contains(&secret_part[..20]), "{}", r.text);
    }

    // It was stored, though.
    let mut conn = db.connect();
    let tenant_id: TenantId = id.parse().unwrap();
    let stored = tenant_store::channels::find(
        &mut conn,
        &tenant_id,
        ChannelKind::Telegram,
        &moltbot_saas_tests::test_keys(),
    )
    .unwrap();
    assert_eq!(
        stored.credentials.get("botToken").map(|v| v.expose()),
        Some(TELEGRAM_TOKEN)
    );
    // The audit row names the field, never the value.
    let rows = tenant_store::audit::list_for_tenant(&mut conn, &tenant_id, 10).unwrap();
    let updated = rows.iter().find(|r| r.action == "channel.updated").unwrap();
    let details = updated.details.as_deref().unwrap();
    assert!(details.contains("credentials"), "{details}");
    assert!(!details.contains(secret_part), "{details}");

    // Clearing the token sends the channel back to awaiting credentials.
    let r = app
        .patch(
            &format!("{base}/telegram"),
            &json!({"credentials": {"botToken": null}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["state"], "awaiting_credentials");
    assert_eq!(r.body["missingFields"], json!(["botToken"]));
}

#[tokio::test]
async fn short_secrets_show_no_characters_at_all() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let id = tenant(&app, "Acme").await;
    let signing_secret = "s3cr3tQ";
    let bot_token = "xoxb-42-abcdefghijklmnop";
    let r = app
        .post(
            &format!("/tenants/{id}/channels"),
            &json!({
                "channel": "slack",
                "credentials": {"mode": "http", "botToken": bot_token, "signingSecret": signing_secret}
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["state"], "ready");
    assert_eq!(
        r.body["credentials"]["signingSecret"],
        json!({"set": true, "required": true}),
        "no last4 for a short secret"
    );
    assert_eq!(r.body["credentials"]["botToken"]["last4"], "mnop");
    assert_eq!(r.body["credentials"]["mode"]["value"], "http");
    assert_eq!(
        r.body["credentials"]["appToken"],
        json!({"set": false, "required": false}),
        "http mode needs no app token"
    );
    let signal = app
        .post(
            &format!("/tenants/{id}/channels"),
            &json!({"channel": "signal", "credentials": {"account": "+15551234567"}}),
        )
        .await;
    assert_eq!(signal.status, StatusCode::CREATED, "{}", signal.text);
    assert_eq!(
        signal.body["credentials"]["account"],
        json!({"set": true, "required": true, "last4": "4567"}),
        "a phone number is personal data: redacted like a secret"
    );
    for text in [
        &r.text,
        &signal.text,
        &app.get(&format!("/tenants/{id}/channels")).await.text,
    ] {
        assert!(!text.contains(signing_secret), "{text}");
        assert!(!text.contains(bot_token), "{text}");
        assert!(!text.contains("+15551234567"), "{text}");
    }
}

#[tokio::test]
async fn unknown_channels_and_tenants_are_404() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let id = tenant(&app, "Acme").await;
    let other = tenant(&app, "Globex").await;
    let r = app
        .post(
            &format!("/tenants/{other}/channels"),
            &json!({"channel": "slack"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);

    // A kind this tenant does not have (another tenant's does not count).
    let path = format!("/tenants/{id}/channels/slack");
    app.get(&path)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    app.patch(&path, &json!({"enabled": false}))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    app.delete(&path)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    let r = app.get(&format!("/tenants/{other}/channels/slack")).await;
    assert_eq!(
        r.body["enabled"], true,
        "the other tenant's channel is untouched"
    );

    // An unknown tenant.
    let unknown = uuid::Uuid::new_v4();
    let before = db.row_counts();
    for r in [
        app.get(&format!("/tenants/{unknown}/channels")).await,
        app.post(
            &format!("/tenants/{unknown}/channels"),
            &json!({"channel": "telegram"}),
        )
        .await,
        app.get(&format!("/tenants/{unknown}/channels/telegram"))
            .await,
        app.patch(
            &format!("/tenants/{unknown}/channels/telegram"),
            &json!({"enabled": true}),
        )
        .await,
        app.delete(&format!("/tenants/{unknown}/channels/telegram"))
            .await,
    ] {
        r.assert_error(StatusCode::NOT_FOUND, "not_found");
    }
    assert_eq!(db.row_counts(), before, "nothing written");

    // A deleted tenant: its channels are gone with it.
    assert_eq!(
        app.delete(&format!("/tenants/{other}")).await.status,
        StatusCode::NO_CONTENT
    );
    app.get(&format!("/tenants/{other}/channels"))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    app.get(&format!("/tenants/{other}/channels/slack"))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    app.post(
        &format!("/tenants/{other}/channels"),
        &json!({"channel": "slack"}),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(db.row_counts().channels, 0);
}

#[tokio::test]
async fn a_second_channel_of_a_kind_is_a_conflict() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let id = tenant(&app, "Acme").await;
    let base = format!("/tenants/{id}/channels");
    let r = app.post(&base, &json!({"channel": "telegram"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let before = db.row_counts();
    let r = app
        .post(
            &base,
            &json!({"channel": "telegram", "credentials": {"botToken": TELEGRAM_TOKEN}}),
        )
        .await;
    r.assert_error(StatusCode::CONFLICT, "conflict");
    assert_eq!(r.body["error"]["details"]["field"], "channel");
    assert!(!r.text.contains(TELEGRAM_TOKEN));
    assert_eq!(db.row_counts(), before, "nothing written");
    let r = app.get(&format!("{base}/telegram")).await;
    assert_eq!(
        r.body["state"], "awaiting_credentials",
        "the first channel is unchanged"
    );
}
