//! Webhook signing secrets sealed at rest, on both backends: never in clear in the database
//! (also across a secret rotation), re-sealed by a key rotation together with channel
//! credentials, legacy plaintext rows sealed, moved or tampered envelopes refused.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chrono::Utc;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use moltbot_saas_tests::{TestDb, spawn_app, test_keys};
use reqwest::StatusCode;
use serde_json::json;
use tenant_core::{NewTenant, Secret, TenantId};
use tenant_store::crypto::KeyRing;
use tenant_store::key_rotation::{self, Scope};
use tenant_store::schema::webhook_endpoints as table;
use tenant_store::webhooks::{self, NewEndpoint};
use tenant_store::{AnyConnection, StoreError, tenants};
use uuid::Uuid;

const K1: &str = "k1:MTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTE=";
const K2: &str = "k2:MjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjI=";

fn ring(spec: &str) -> Arc<KeyRing> {
    Arc::new(KeyRing::parse(spec).unwrap())
}

fn secret(i: usize) -> String {
    format!("whsec_c2VhbGVkU2VjcmV0TnVtYmVy{i:04}MDEyMzQ1Njc4OQ==")
}

/// A tenant with one endpoint whose secret is [`secret`]`(i)`, sealed under `keys`.
fn endpoint(conn: &mut AnyConnection, keys: &KeyRing, i: usize) -> (TenantId, Uuid) {
    let t = tenants::insert(
        conn,
        NewTenant::parse(&format!("Hooked {i}"), None, None).unwrap(),
        Utc::now(),
    )
    .unwrap();
    let e = webhooks::insert(
        conn,
        &t.id,
        NewEndpoint {
            url: format!("https://hooks.example.com/{i}"),
            description: None,
            event_types: vec![],
            enabled: true,
            secret: Secret::new(secret(i)),
        },
        Utc::now(),
        keys,
    )
    .unwrap();
    (t.id, e.id)
}

fn raw(conn: &mut AnyConnection, id: Uuid) -> (String, Option<String>) {
    table::table
        .find(id.to_string())
        .select((table::secret, table::secret_key_id))
        .first(conn)
        .unwrap()
}

fn set_raw(conn: &mut AnyConnection, id: Uuid, value: &(String, Option<String>)) {
    let n = diesel::update(table::table.find(id.to_string()))
        .set((
            table::secret.eq(&value.0),
            table::secret_key_id.eq(&value.1),
        ))
        .execute(conn)
        .unwrap();
    assert_eq!(n, 1);
}

fn current(conn: &mut AnyConnection, id: Uuid, keys: &KeyRing) -> Result<String, StoreError> {
    webhooks::signing_secrets(conn, id, Utc::now(), keys)
        .map(|s| s.first().map(|s| s.expose().to_owned()).unwrap_or_default())
}

#[tokio::test]
async fn no_webhook_secret_is_in_the_database_in_clear() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let id = app.create_tenant("Secret Keeper").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let hooks = format!("/tenants/{id}/webhooks");
    let r = app
        .post(&hooks, &json!({"url": "https://hooks.example.com/in"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let wid: Uuid = r.body["id"].as_str().unwrap().parse().unwrap();
    let first = r.body["secret"].as_str().unwrap().to_owned();
    let r = app
        .post(&format!("{hooks}/{wid}/rotate-secret"), &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let second = r.body["secret"].as_str().unwrap().to_owned();
    app.stop().await;

    let mut conn = db.connect();
    let (value, key_id) = raw(&mut conn, wid);
    assert!(value.starts_with("v1.test."), "{value}");
    assert_eq!(key_id.as_deref(), Some("test"));
    // Both secrets sign during the overlap, opened from the one envelope.
    let signing: Vec<String> = webhooks::signing_secrets(&mut conn, wid, Utc::now(), &test_keys())
        .unwrap()
        .iter()
        .map(|s| s.expose().to_owned())
        .collect();
    assert_eq!(signing, [second.clone(), first.clone()]);

    // Only the random part: the `whsec_` prefix is not a secret.
    let needles = [&first[6..], &second[6..]];
    for needle in needles {
        assert!(!value.contains(needle));
    }
    if let AnyConnection::Sqlite(c) = &mut conn {
        c.batch_execute("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    }
    drop(conn);
    for (file, bytes) in db.sqlite_files() {
        for needle in needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "a webhook secret is in {} in clear",
                file.display()
            );
        }
    }
}

#[test]
fn key_rotation_reseals_webhook_secrets_and_the_old_key_can_go() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let k1 = ring(K1);
    let rows: Vec<(TenantId, Uuid)> = (0..3).map(|i| endpoint(&mut conn, &k1, i)).collect();
    // A row written before sealing: the plaintext secret, no key id.
    set_raw(&mut conn, rows[0].1, &(secret(0), None));
    assert_eq!(current(&mut conn, rows[0].1, &k1).unwrap(), secret(0));

    // Start seals the plaintext row alone.
    let sealed = key_rotation::reseal_all(&mut conn, &k1, Scope::Plaintext, 2, |_, _| {}).unwrap();
    assert_eq!(sealed.resealed, 1);
    assert_eq!(raw(&mut conn, rows[0].1).1.as_deref(), Some("k1"));

    let both = ring(&format!("{K2},{K1}"));
    let k2 = ring(K2);
    let err = current(&mut conn, rows[1].1, &k2).unwrap_err();
    assert!(matches!(err, StoreError::WebhookSecret { .. }), "{err}");
    assert!(!err.to_string().contains(&secret(1)[6..]));
    assert_eq!(key_rotation::usage(&mut conn, &both).unwrap().pending(), 3);

    let done = key_rotation::reseal_all(&mut conn, &both, Scope::NotActive, 2, |_, _| {}).unwrap();
    assert_eq!(done.resealed, 3);
    assert_eq!(key_rotation::usage(&mut conn, &both).unwrap().pending(), 0);
    // Key 1 can go: everything opens under key 2 alone, unchanged.
    for (i, (_, id)) in rows.iter().enumerate() {
        assert_eq!(raw(&mut conn, *id).1.as_deref(), Some("k2"));
        assert_eq!(current(&mut conn, *id, &k2).unwrap(), secret(i));
    }
}

#[test]
fn a_moved_or_tampered_secret_does_not_open() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let keys = test_keys();
    let (_, a) = endpoint(&mut conn, &keys, 1);
    let (_, b) = endpoint(&mut conn, &keys, 2);
    let a_raw = raw(&mut conn, a);
    // A's envelope copied into B's row: bound to A's tenant and id, it is refused.
    set_raw(&mut conn, b, &a_raw);
    let err = current(&mut conn, b, &keys).unwrap_err();
    assert!(matches!(err, StoreError::WebhookSecret { .. }), "{err}");
    // A flipped character in A's own ciphertext.
    let mut tampered = a_raw.0.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    set_raw(
        &mut conn,
        a,
        &(String::from_utf8(tampered).unwrap(), a_raw.1.clone()),
    );
    assert!(current(&mut conn, a, &keys).is_err());
    // A plaintext value claiming a key id is refused too.
    set_raw(&mut conn, a, &(secret(1), Some("test".into())));
    assert!(current(&mut conn, a, &keys).is_err());
}

#[tokio::test]
async fn an_endpoint_whose_secret_does_not_open_holds_up_only_itself() {
    use crate::webhooks_support::{app, default_dispatcher, send_event, tenant_with_endpoint};
    use moltbot_saas_tests::WebhookReceiver;

    let db = TestDb::new();
    let app = app(&db).await;
    let rx = WebhookReceiver::start().await;
    let (good, _) = tenant_with_endpoint(&app, &rx.url).await;
    let (bad, bad_hook) = tenant_with_endpoint(&app, &rx.url).await;
    // The bad endpoint's secret sealed under a key the dispatcher's ring lacks.
    let bad_id: Uuid = bad_hook["id"].as_str().unwrap().parse().unwrap();
    let bad_tenant = bad["id"].as_str().unwrap();
    let foreign = webhook_secret_sealed_elsewhere(bad_tenant, bad_id);
    set_raw(&mut db.connect(), bad_id, &foreign);
    send_event(&app, &good, "ok-1").await;
    send_event(&app, &bad, "stuck-1").await;

    let d = default_dispatcher(&db);
    let o = d.dispatch_due(Utc::now()).await.unwrap();
    assert_eq!((o.claimed, o.succeeded, o.retried), (2, 1, 1));
    // Only the good delivery went out: nothing unsigned is ever sent.
    let sent = rx.requests();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].header("webhook-signature").starts_with("v1,"));
    let r = app
        .get(&format!(
            "/tenants/{bad_tenant}/webhooks/{bad_id}/deliveries"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let list = r.body["deliveries"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["status"], "pending", "retried once the key is back");
    // Not the endpoint's fault: it stays enabled.
    let r = app
        .get(&format!("/tenants/{bad_tenant}/webhooks/{bad_id}"))
        .await;
    assert_eq!(r.body["enabled"], true, "{}", r.text);
}

/// An envelope of a valid secret for this endpoint, sealed under a key the test ring lacks.
fn webhook_secret_sealed_elsewhere(tenant_id: &str, id: Uuid) -> (String, Option<String>) {
    let elsewhere = ring(K2);
    let sealed =
        tenant_store::webhook_secrets::seal(&elsewhere, tenant_id, &id.to_string(), &secret(9))
            .unwrap();
    (sealed.value, sealed.key_id)
}
