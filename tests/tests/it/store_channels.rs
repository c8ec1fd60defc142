//! The channel, API key and audit stores, called directly; the same tests run on SQLite and
//! PostgreSQL.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use diesel::prelude::*;
use moltbot_saas_tests::TestDb;
use serde_json::json;
use tenant_core::{
    ChannelKind, ChannelUpdate, Credentials, NewChannel, NewTenant, Tenant, TenantId,
};
use tenant_store::audit::{self, AuditContext, AuditEvent};
use tenant_store::schema::{api_keys, channels as channels_table};
use tenant_store::{AnyConnection, StoreError, api_keys as keys, channels, tenants};

fn tenant(conn: &mut AnyConnection, name: &str) -> Tenant {
    tenants::insert(
        conn,
        NewTenant::parse(name, None, None).expect("valid tenant"),
        tenant_core::now(),
    )
    .expect("insert tenant")
}

fn new_channel(kind: &str, credentials: Option<serde_json::Value>) -> NewChannel {
    NewChannel::parse(kind, None, None, credentials.as_ref()).expect("valid channel")
}

#[test]
fn one_channel_per_kind_and_crud() {
    let db = TestDb::new();
    let keys = moltbot_saas_tests::test_keys();
    let mut conn = db.connect();
    let acme = tenant(&mut conn, "Acme");
    let now = tenant_core::now();

    let telegram = channels::insert(
        &mut conn,
        &acme.id,
        new_channel("telegram", None),
        now,
        &keys,
    )
    .unwrap();
    assert_eq!(telegram.kind, ChannelKind::Telegram);
    assert!(telegram.enabled, "enabled by default");
    assert_eq!(telegram.state().as_str(), "awaiting_credentials");

    // A second channel of the same kind is a conflict, and writes nothing.
    let err = channels::insert(
        &mut conn,
        &acme.id,
        new_channel("telegram", Some(json!({"botToken": "1:abc"}))),
        now,
        &keys,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                field: "channel",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        channels::list(&mut conn, &acme.id, &keys).unwrap(),
        std::slice::from_ref(&telegram)
    );

    // One of every other kind is fine.
    for kind in ["whatsapp", "discord", "signal", "slack"] {
        channels::insert(&mut conn, &acme.id, new_channel(kind, None), now, &keys).unwrap();
    }
    let listed = channels::list(&mut conn, &acme.id, &keys).unwrap();
    let kinds: Vec<&str> = listed.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["discord", "signal", "slack", "telegram", "whatsapp"],
        "in kind order"
    );

    assert_eq!(
        channels::find(&mut conn, &acme.id, ChannelKind::Telegram, &keys).unwrap(),
        telegram
    );

    let later = now + chrono::Duration::seconds(1);
    let update = ChannelUpdate::parse(
        ChannelKind::Telegram,
        Some(false),
        Some(Some("Support bot")),
        Some(&json!({"botToken": "123456:AAbb-cc_dd"})),
    )
    .unwrap();
    let updated = channels::update(
        &mut conn,
        &acme.id,
        ChannelKind::Telegram,
        update,
        later,
        &keys,
    )
    .unwrap();
    assert!(!updated.enabled);
    assert_eq!(updated.state().as_str(), "disabled");
    assert_eq!(
        updated.display_name.as_ref().map(|d| d.as_str()),
        Some("Support bot")
    );
    assert!(updated.credentials.is_complete());
    assert_eq!(updated.updated_at, later);
    assert_eq!(updated.created_at, telegram.created_at);
    assert_eq!(
        channels::find(&mut conn, &acme.id, ChannelKind::Telegram, &keys).unwrap(),
        updated
    );

    // Clearing the display name stores NULL.
    let clear = ChannelUpdate::parse(ChannelKind::Telegram, Some(true), Some(None), None).unwrap();
    let cleared = channels::update(
        &mut conn,
        &acme.id,
        ChannelKind::Telegram,
        clear,
        later,
        &keys,
    )
    .unwrap();
    assert!(cleared.display_name.is_none());
    assert_eq!(cleared.state().as_str(), "ready");
    assert!(
        channels::find(&mut conn, &acme.id, ChannelKind::Telegram, &keys)
            .unwrap()
            .display_name
            .is_none()
    );

    channels::delete(&mut conn, &acme.id, ChannelKind::Telegram).unwrap();
    assert!(matches!(
        channels::find(&mut conn, &acme.id, ChannelKind::Telegram, &keys),
        Err(StoreError::NotFound("channel"))
    ));
    assert!(matches!(
        channels::delete(&mut conn, &acme.id, ChannelKind::Telegram),
        Err(StoreError::NotFound("channel"))
    ));
    assert_eq!(channels::list(&mut conn, &acme.id, &keys).unwrap().len(), 4);
    // The kind can be added again once removed.
    channels::insert(
        &mut conn,
        &acme.id,
        new_channel("telegram", None),
        later,
        &keys,
    )
    .unwrap();
}

#[test]
fn channels_are_reached_only_through_their_tenant() {
    let db = TestDb::new();
    let keys = moltbot_saas_tests::test_keys();
    let mut conn = db.connect();
    let acme = tenant(&mut conn, "Acme");
    let globex = tenant(&mut conn, "Globex");
    let now = tenant_core::now();
    channels::insert(
        &mut conn,
        &acme.id,
        new_channel("discord", None),
        now,
        &keys,
    )
    .unwrap();
    // The same kind on another tenant is not a conflict.
    channels::insert(
        &mut conn,
        &globex.id,
        new_channel("discord", None),
        now,
        &keys,
    )
    .unwrap();
    channels::delete(&mut conn, &globex.id, ChannelKind::Discord).unwrap();

    assert!(matches!(
        channels::find(&mut conn, &globex.id, ChannelKind::Discord, &keys),
        Err(StoreError::NotFound("channel"))
    ));
    assert!(channels::find(&mut conn, &acme.id, ChannelKind::Discord, &keys).is_ok());
    assert!(
        channels::list(&mut conn, &globex.id, &keys)
            .unwrap()
            .is_empty()
    );
    let update = ChannelUpdate::parse(ChannelKind::Discord, Some(false), None, None).unwrap();
    assert!(matches!(
        channels::update(
            &mut conn,
            &globex.id,
            ChannelKind::Discord,
            update,
            now,
            &keys
        ),
        Err(StoreError::NotFound("channel"))
    ));
    assert!(
        channels::find(&mut conn, &acme.id, ChannelKind::Discord, &keys)
            .unwrap()
            .enabled,
        "another tenant's update did not reach this channel"
    );

    // A channel of a tenant that does not exist.
    let err = channels::insert(
        &mut conn,
        &TenantId::random(),
        new_channel("telegram", None),
        now,
        &keys,
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::NotFound("tenant")), "{err:?}");
}

#[test]
fn credentials_round_trip_through_the_database() {
    let db = TestDb::new();
    let keys = moltbot_saas_tests::test_keys();
    let mut conn = db.connect();
    let acme = tenant(&mut conn, "Acme");
    let now = tenant_core::now();
    let slack = json!({
        "mode": "http",
        "botToken": "xoxb-1111-2222-abcdefghijkl",
        "signingSecret": "0123456789abcdef0123456789abcdef",
        "userToken": "xoxp-3333-4444",
    });
    let discord = json!({"token": "FAKE.discord.token.abcdefgh", "applicationId": "900000001"});
    let signal = json!({"account": "+15551234567"});
    for (kind, creds) in [
        ("slack", &slack),
        ("discord", &discord),
        ("signal", &signal),
    ] {
        let written = channels::insert(
            &mut conn,
            &acme.id,
            new_channel(kind, Some(creds.clone())),
            now,
            &keys,
        )
        .unwrap();
        let kind: ChannelKind = kind.parse().unwrap();
        let read = channels::find(&mut conn, &acme.id, kind, &keys).unwrap();
        assert_eq!(read.credentials, written.credentials, "{kind}");
        assert_eq!(
            read.credentials,
            Credentials::parse(kind, creds).unwrap(),
            "{kind}"
        );
        assert!(read.is_served(), "{kind} is complete");
        for (field, value) in creds.as_object().unwrap() {
            assert_eq!(
                read.credentials.get(field).map(|v| v.expose()),
                value.as_str(),
                "{kind}.{field}"
            );
        }
    }

    // A patch replaces one field, clears another, and keeps the rest.
    let patch = ChannelUpdate::parse(
        ChannelKind::Slack,
        None,
        None,
        Some(&json!({"botToken": "xoxb-5555-new-token", "userToken": null})),
    )
    .unwrap();
    channels::update(&mut conn, &acme.id, ChannelKind::Slack, patch, now, &keys).unwrap();
    let read = channels::find(&mut conn, &acme.id, ChannelKind::Slack, &keys).unwrap();
    let get = |f: &str| read.credentials.get(f).map(|v| v.expose().to_owned());
    assert_eq!(get("botToken").as_deref(), Some("xoxb-5555-new-token"));
    assert_eq!(get("userToken"), None);
    assert_eq!(
        get("signingSecret").as_deref(),
        Some("0123456789abcdef0123456789abcdef")
    );
    assert_eq!(get("mode").as_deref(), Some("http"));
}

#[test]
fn deleting_a_tenant_cascades_to_channels_and_api_keys() {
    let db = TestDb::new();
    let keys = moltbot_saas_tests::test_keys();
    let mut conn = db.connect();
    let doomed = tenant(&mut conn, "Doomed");
    let kept = tenant(&mut conn, "Kept");
    let now = tenant_core::now();
    for t in [&doomed, &kept] {
        channels::insert(&mut conn, &t.id, new_channel("telegram", None), now, &keys).unwrap();
        channels::insert(&mut conn, &t.id, new_channel("whatsapp", None), now, &keys).unwrap();
        let hash = format!("{:0>64}", t.id.short_hex());
        keys::insert(
            &mut conn,
            &t.id,
            &keys::NewApiKey {
                name: "default",
                prefix: "msk_live_abcd",
                key_hash: &hash,
                role: tenant_core::Role::Owner,
                expires_at: None,
            },
            now,
        )
        .unwrap();
    }
    assert_eq!(keys::list(&mut conn, &doomed.id).unwrap().len(), 1);
    let hash = format!("{:0>64}", doomed.id.short_hex());
    assert_eq!(
        keys::find_by_hash(&mut conn, &hash)
            .unwrap()
            .map(|k| k.tenant_id),
        Some(doomed.id.to_string())
    );

    tenant_store::gateways::fleet_transaction(&mut conn, |f| tenants::delete(f, &doomed.id))
        .unwrap();

    let count_channels = |conn: &mut AnyConnection, id: &TenantId| -> i64 {
        channels_table::table
            .filter(channels_table::tenant_id.eq(id.to_string()))
            .count()
            .get_result(conn)
            .unwrap()
    };
    let count_keys = |conn: &mut AnyConnection, id: &TenantId| -> i64 {
        api_keys::table
            .filter(api_keys::tenant_id.eq(id.to_string()))
            .count()
            .get_result(conn)
            .unwrap()
    };
    assert_eq!(count_channels(&mut conn, &doomed.id), 0);
    assert_eq!(count_keys(&mut conn, &doomed.id), 0);
    assert!(keys::find_by_hash(&mut conn, &hash).unwrap().is_none());
    // The other tenant keeps everything.
    assert_eq!(count_channels(&mut conn, &kept.id), 2);
    assert_eq!(count_keys(&mut conn, &kept.id), 1);
}

#[test]
fn audit_rows_are_written_and_outlive_the_tenant() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let acme = tenant(&mut conn, "Acme");
    let ctx = AuditContext {
        actor_type: "operator".into(),
        actor_id: None,
        request_id: Some("req-1".into()),
        client_addr: Some("127.0.0.1".into()),
        user_agent: Some("tests".into()),
    };
    let t0 = tenant_core::now();
    let t1 = t0 + chrono::Duration::seconds(1);
    audit::record(
        &mut conn,
        &ctx,
        AuditEvent {
            tenant_id: Some(&acme.id),
            action: "tenant.created",
            resource_type: "tenant",
            resource_id: Some(acme.id.to_string()),
            details: None,
        },
        t0,
    )
    .unwrap();
    audit::record(
        &mut conn,
        &ctx,
        AuditEvent {
            tenant_id: Some(&acme.id),
            action: "channel.updated",
            resource_type: "channel",
            resource_id: None,
            details: Some(json!({"fields": ["credentials"]})),
        },
        t1,
    )
    .unwrap();
    tenant_store::gateways::fleet_transaction(&mut conn, |f| tenants::delete(f, &acme.id)).unwrap();

    let rows = audit::list_for_tenant(&mut conn, &acme.id, 10).unwrap();
    let actions: Vec<&str> = rows.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(
        actions,
        ["channel.updated", "tenant.created"],
        "newest first"
    );
    let newest = &rows[0];
    assert_eq!(
        newest.tenant_id.as_deref(),
        Some(acme.id.to_string().as_str())
    );
    assert_eq!(newest.actor_type, "operator");
    assert_eq!(newest.request_id.as_deref(), Some("req-1"));
    assert_eq!(newest.client_addr.as_deref(), Some("127.0.0.1"));
    assert_eq!(newest.created_at, t1.naive_utc());
    let details: serde_json::Value =
        serde_json::from_str(newest.details.as_deref().unwrap()).unwrap();
    assert_eq!(details, json!({"fields": ["credentials"]}));
    assert_eq!(
        audit::list_for_tenant(&mut conn, &acme.id, 1)
            .unwrap()
            .len(),
        1
    );
    assert!(
        audit::list_for_tenant(&mut conn, &TenantId::random(), 10)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn the_service_writes_an_audit_row_with_every_change() {
    use tenant_service::{channels, tenants};
    let db = TestDb::new();
    let keys = moltbot_saas_tests::test_keys();
    let mut conn = db.connect();
    let ctx = AuditContext {
        actor_type: "cli".into(),
        ..AuditContext::default()
    };
    let (t, key) = tenants::create_tenant(
        &mut conn,
        &ctx,
        &tenant_service::api_keys::ApiKeyHasher::new(&[9; 32]),
        NewTenant::parse("Acme", None, None).unwrap(),
        None,
    )
    .unwrap();
    channels::create_channel(&mut conn, &ctx, &t.id, new_channel("telegram", None), &keys).unwrap();
    channels::update_channel(
        &mut conn,
        &ctx,
        &t.id,
        ChannelKind::Telegram,
        ChannelUpdate::parse(
            ChannelKind::Telegram,
            None,
            None,
            Some(&json!({"botToken": "123456:SECRETsecretSECRET"})),
        )
        .unwrap(),
        &keys,
    )
    .unwrap();
    channels::delete_channel(&mut conn, &ctx, &t.id, ChannelKind::Telegram).unwrap();
    tenants::delete_tenant(&mut conn, &ctx, &t.id).unwrap();
    let rows = audit::list_for_tenant(&mut conn, &t.id, 50).unwrap();
    let mut actions: Vec<&str> = rows.iter().map(|r| r.action.as_str()).collect();
    actions.sort_unstable();
    assert_eq!(
        actions,
        [
            "channel.created",
            "channel.deleted",
            "channel.updated",
            "key.created",
            "tenant.created",
            "tenant.deleted",
        ]
    );
    assert!(rows.iter().all(|r| r.actor_type == "cli"));
    // Audit details name fields, never values.
    for r in &rows {
        let details = r.details.as_deref().unwrap_or("");
        assert!(!details.contains("SECRETsecret"), "{details}");
        assert!(!details.contains(key.expose()), "{details}");
    }
}
