//! The incrementally kept `GET /config` through real servers: after any sequence of changes,
//! made through either of two replicas on one database, each serves exactly what a fresh render
//! of the store gives, with the same tag; the tag survives a restart; the body is sized; and the
//! stamps the cache lists change with every kind of write.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use chrono::Duration;
use moltbot_saas_tests::{TestApp, TestDb, spawn_app_with, test_keys, test_settings};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tenant_configgen::{Dialect, RenderOptions};
use tenant_core::{ChannelKind, NewTenant, TenantId};
use tenant_store::config_sources::{self, BATCH};
use tenant_store::{channels, tenants};

/// A small deterministic generator (xorshift64*), so a failing sequence can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
    }
}

/// `GET path` as the gateway: (status, ETag, body bytes).
async fn fetch(app: &TestApp, path: &str) -> (StatusCode, String, Vec<u8>, Option<u64>) {
    let resp = app
        .client
        .get(format!("{}{path}", app.address))
        .bearer_auth(&app.gateway_token)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let tag = resp
        .headers()
        .get("etag")
        .map(|t| t.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let length = resp.content_length();
    (status, tag, resp.bytes().await.unwrap().to_vec(), length)
}

/// What a fresh render of the whole store gives, as the CLI renders it.
fn from_scratch(db: &TestDb, opts: &RenderOptions) -> Result<Vec<u8>, String> {
    let mut conn = db.connect();
    let loaded =
        tenant_service::gateway_config::load_sources(&mut conn, false, &test_keys()).unwrap();
    let sources = tenant_service::gateway_config::as_sources(&loaded);
    tenant_configgen::render_combined(&sources, opts)
        .map(|r| r.json.into_bytes())
        .map_err(|e| e.to_string())
}

/// One random change through `app`.
async fn change(app: &TestApp, rng: &mut Rng, ids: &mut Vec<String>, n: usize) {
    let kinds = [
        (
            "telegram",
            json!({"botToken": format!("{}:AAfake-{n}", 100 + n)}),
        ),
        ("discord", json!({"token": format!("FAKE.discord.{n}")})),
        (
            "slack",
            json!({"botToken": format!("xoxb-{n}"), "appToken": format!("xapp-{n}")}),
        ),
        ("whatsapp", json!({})),
    ];
    if ids.is_empty() || rng.below(5) == 0 {
        let body = app.create_tenant(&format!("Tenant {n} «${{X}}»")).await;
        ids.push(body["id"].as_str().unwrap().to_owned());
        return;
    }
    let i = rng.below(ids.len());
    let t = format!("/tenants/{}", ids[i]);
    let (kind, creds) = &kinds[rng.below(kinds.len())];
    let status = match rng.below(8) {
        0 => {
            let status = app.delete(&t).await.status;
            ids.swap_remove(i);
            status
        }
        1 => {
            let to = if rng.below(2) == 0 {
                "suspended"
            } else {
                "active"
            };
            app.patch(&t, &json!({"status": to})).await.status
        }
        2 => {
            let name = format!("Renamed {n} \"q\"");
            app.patch(&t, &json!({"name": name})).await.status
        }
        3 | 4 => {
            let body = json!({"channel": kind, "credentials": creds});
            let r = app.post(&format!("{t}/channels"), &body).await;
            // A second channel of a kind is refused; that changes nothing.
            if r.status == StatusCode::CONFLICT {
                return;
            }
            r.status
        }
        5 => {
            let on = rng.below(2) == 0;
            let r = app
                .patch(&format!("{t}/channels/{kind}"), &json!({"enabled": on}))
                .await;
            if r.status == StatusCode::NOT_FOUND {
                return;
            }
            r.status
        }
        6 => {
            let r = app.delete(&format!("{t}/channels/{kind}")).await;
            if r.status == StatusCode::NOT_FOUND {
                return;
            }
            r.status
        }
        _ => {
            let r = app
                .patch(
                    &format!("{t}/channels/{kind}"),
                    &json!({"displayName": format!("Shown {n}")}),
                )
                .await;
            if r.status == StatusCode::NOT_FOUND {
                return;
            }
            r.status
        }
    };
    assert!(status.is_success(), "{status}");
}

#[tokio::test]
async fn random_changes_through_two_replicas_match_a_fresh_render() {
    let db = TestDb::new();
    let settings = test_settings(&db);
    let current = settings.render.clone();
    let legacy = RenderOptions {
        dialect: Dialect::Legacy,
        ..current.clone()
    };
    let apps = [
        spawn_app_with(settings.clone()).await,
        spawn_app_with(settings).await,
    ];
    let mut rng = Rng(0x0c0f_f1ce);
    let mut ids = Vec::new();
    let mut tags: HashMap<Vec<u8>, String> = HashMap::new();
    for step in 0..40 {
        for _ in 0..=rng.below(2) {
            let app = &apps[rng.below(2)];
            change(app, &mut rng, &mut ids, step).await;
        }
        let expected = from_scratch(&db, &current).unwrap();
        let (status, tag_a, body_a, length) = fetch(&apps[0], "/config").await;
        assert_eq!(status, StatusCode::OK, "step {step}");
        assert!(
            body_a == expected,
            "step {step}: replica A differs from a fresh render"
        );
        assert_eq!(
            length,
            Some(expected.len() as u64),
            "step {step}: sized body"
        );
        let (_, tag_b, body_b, _) = fetch(&apps[1], "/config").await;
        assert!(
            body_b == expected,
            "step {step}: replica B differs from a fresh render"
        );
        assert_eq!(tag_a, tag_b, "step {step}: replicas agree on the tag");
        // Tags follow content: a document seen before has its old tag, a new one a new tag.
        match tags.get(&expected) {
            Some(seen) => assert_eq!(seen, &tag_a, "step {step}"),
            None => {
                assert!(!tags.values().any(|t| *t == tag_a), "step {step}");
                tags.insert(expected, tag_a);
            }
        }
        if step % 4 == 0 {
            // Another variant, kept on its own, checked less often.
            let (_, _, body, _) = fetch(&apps[rng.below(2)], "/config?dialect=legacy").await;
            assert!(
                body == from_scratch(&db, &legacy).unwrap(),
                "step {step}: legacy"
            );
        }
    }
    assert!(tags.len() > 20, "{} distinct documents", tags.len());
    for app in apps {
        app.stop().await;
    }
}

#[tokio::test]
async fn the_tag_survives_a_restart_and_many_tenants_are_served_in_full() {
    let db = TestDb::new();
    // Enough tenants to fill every bucket and several load batches.
    let n = BATCH * 2 + 17;
    {
        let mut conn = db.connect();
        let keys = test_keys();
        let now = tenant_core::now();
        for i in 0..n {
            let new = NewTenant::parse(&format!("Bulk {i}"), None, None).unwrap();
            let t = tenants::insert(&mut conn, new, now).unwrap();
            let tg = json!({"botToken": format!("{}:AAbulk-{i}", 100_000 + i)});
            let new = tenant_core::NewChannel::parse("telegram", None, None, Some(&tg)).unwrap();
            channels::insert(&mut conn, &t.id, new, now, &keys).unwrap();
        }
    }
    let settings = test_settings(&db);
    let expected = from_scratch(&db, &settings.render).unwrap();
    let first = spawn_app_with(settings.clone()).await;
    let (status, tag, body, length) = fetch(&first, "/config").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body == expected, "differs from a fresh render");
    assert_eq!(length, Some(expected.len() as u64));
    first.stop().await;

    let again = spawn_app_with(settings).await;
    let resp = again
        .client
        .get(format!("{}/config", again.address))
        .bearer_auth(&again.gateway_token)
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::NOT_MODIFIED,
        "a restarted server gives the same tag"
    );
    let _: Value = serde_json::from_slice(&fetch(&again, "/config").await.2).unwrap();
    again.stop().await;
}

#[test]
fn stamps_change_with_every_write_and_batches_load_whole_tenants() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let keys = test_keys();
    let stamps = |conn: &mut _| {
        let mut all: HashMap<TenantId, (bool, u64, Vec<u64>)> = HashMap::new();
        config_sources::for_each_tenant_stamp(conn, None, "2000-01", |s| {
            all.insert(s.id, (s.active, s.version, Vec::new()));
        })
        .unwrap();
        config_sources::for_each_channel_stamp(conn, None, |s| {
            let entry = all.get_mut(&s.tenant_id).unwrap();
            entry.2.push(s.version);
            entry.2.sort();
        })
        .unwrap();
        all
    };
    let mut now = tenant_core::now();
    let mut tick = || {
        now += Duration::milliseconds(5);
        now
    };
    let a = tenants::insert(
        &mut conn,
        NewTenant::parse("A", None, None).unwrap(),
        tick(),
    )
    .unwrap();
    let b = tenants::insert(
        &mut conn,
        NewTenant::parse("B", None, None).unwrap(),
        tick(),
    )
    .unwrap();
    let mut last = stamps(&mut conn);
    assert_eq!(last.len(), 2);
    let changed = |conn: &mut _, last: &mut HashMap<_, _>, what: &str| {
        let now = stamps(conn);
        assert_ne!(now[&a.id], last[&a.id], "{what}");
        assert_eq!(now.get(&b.id), last.get(&b.id), "{what}: B untouched");
        *last = now;
    };
    let tg = json!({"botToken": "1:AAx"});
    let new = tenant_core::NewChannel::parse("telegram", None, None, Some(&tg)).unwrap();
    channels::insert(&mut conn, &a.id, new, tick(), &keys).unwrap();
    changed(&mut conn, &mut last, "channel added");
    let update =
        tenant_core::ChannelUpdate::parse(ChannelKind::Telegram, Some(false), None, None).unwrap();
    channels::update(
        &mut conn,
        &a.id,
        ChannelKind::Telegram,
        update,
        tick(),
        &keys,
    )
    .unwrap();
    changed(&mut conn, &mut last, "channel disabled");
    let update = tenant_core::TenantUpdate {
        name: None,
        slug: None,
        plan: None,
        status: Some(tenant_core::TenantStatus::Suspended),
    };
    tenants::update(&mut conn, &a.id, update, tick()).unwrap();
    changed(&mut conn, &mut last, "suspended");
    assert!(!last[&a.id].0);
    channels::delete(&mut conn, &a.id, ChannelKind::Telegram).unwrap();
    changed(&mut conn, &mut last, "channel removed");

    // A batch holds the tenants asked for that exist, each with all of its channels.
    let new = tenant_core::NewChannel::parse("telegram", None, None, Some(&tg)).unwrap();
    channels::insert(&mut conn, &b.id, new, tick(), &keys).unwrap();
    let missing = TenantId::random();
    let batch = config_sources::load_batch(&mut conn, &[b.id, missing, a.id], &keys).unwrap();
    let mut got: Vec<_> = batch.iter().map(|(t, c)| (t.id, c.len())).collect();
    got.sort();
    let mut want = vec![(a.id, 0), (b.id, 1)];
    want.sort();
    assert_eq!(got, want);
    tenant_store::gateways::fleet_transaction(&mut conn, |f| tenants::delete(f, &a.id)).unwrap();
    assert!(
        !stamps(&mut conn).contains_key(&a.id),
        "a deleted tenant has no stamp"
    );
}
