//! Channel credentials sealed at rest, on both backends: no plaintext in the database, key
//! rotation end to end (store and CLI), tampered and row-swapped ciphertexts refused, legacy
//! plaintext rows sealed on start, production without keys refused, the development key kept
//! across restarts.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::sync::Arc;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use moltbot_saas_tests::{TEST_ENCRYPTION_KEYS, TestDb, spawn_app, spawn_app_with, test_settings};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tenant_core::{ChannelKind, NewChannel, NewTenant, Tenant};
use tenant_server::settings::Environment;
use tenant_server::startup::{Application, StartupError};
use tenant_store::crypto::KeyRing;
use tenant_store::key_rotation::{self, Scope};
use tenant_store::schema::channels as channels_table;
use tenant_store::{AnyConnection, StoreError, channels, tenants};

use crate::cli::binary;

const K1: &str = "k1:MTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTE=";
const K2: &str = "k2:MjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjI=";

fn ring(spec: &str) -> Arc<KeyRing> {
    Arc::new(KeyRing::parse(spec).unwrap())
}

fn tenant(conn: &mut AnyConnection, name: &str) -> Tenant {
    tenants::insert(
        conn,
        NewTenant::parse(name, None, None).unwrap(),
        tenant_core::now(),
    )
    .unwrap()
}

fn telegram_token(i: usize) -> String {
    format!("{}:AAsealedTOKENvalue{i:04}", 700_000 + i)
}

fn discord_token(i: usize) -> String {
    format!("sealed.discord.token.value{i:04}")
}

/// `n` tenants with a Telegram and a Discord channel each, sealed under `keys`.
fn seed(conn: &mut AnyConnection, keys: &KeyRing, n: usize) -> Vec<Tenant> {
    (0..n)
        .map(|i| {
            let t = tenant(conn, &format!("Sealed {i}"));
            for (kind, creds) in [
                ("telegram", json!({"botToken": telegram_token(i)})),
                ("discord", json!({"token": discord_token(i)})),
            ] {
                let new = NewChannel::parse(kind, None, None, Some(&creds)).unwrap();
                channels::insert(conn, &t.id, new, tenant_core::now(), keys).unwrap();
            }
            t
        })
        .collect()
}

/// Every channel's exposed credentials, by (tenant name, kind).
fn plaintexts(conn: &mut AnyConnection, keys: &KeyRing) -> BTreeMap<(String, String), String> {
    let mut names = BTreeMap::new();
    for t in tenants::list_all(conn).unwrap() {
        names.insert(t.id, t.name.as_str().to_owned());
    }
    channels::list_all(conn, keys)
        .unwrap()
        .into_iter()
        .map(|c| {
            (
                (names[&c.tenant_id].clone(), c.kind.as_str().to_owned()),
                c.credentials.expose_json(),
            )
        })
        .collect()
}

/// The raw `credentials` column of a tenant's channel.
fn raw(conn: &mut AnyConnection, t: &Tenant, kind: &str) -> (String, Option<String>) {
    channels_table::table
        .filter(channels_table::tenant_id.eq(t.id.to_string()))
        .filter(channels_table::kind.eq(kind))
        .select((
            channels_table::credentials,
            channels_table::credentials_key_id,
        ))
        .first(conn)
        .unwrap()
}

fn set_raw(conn: &mut AnyConnection, t: &Tenant, kind: &str, value: &(String, Option<String>)) {
    let n = diesel::update(
        channels_table::table
            .filter(channels_table::tenant_id.eq(t.id.to_string()))
            .filter(channels_table::kind.eq(kind)),
    )
    .set((
        channels_table::credentials.eq(&value.0),
        channels_table::credentials_key_id.eq(&value.1),
    ))
    .execute(conn)
    .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn no_plaintext_credential_is_in_the_database() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let id = app.create_tenant("Plaintext Watch").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = "123456:AAnoPLAINTEXTonDISKplease_xyz";
    let r = app
        .post(
            &format!("/tenants/{id}/channels"),
            &json!({"channel": "telegram", "credentials": {"botToken": token}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let slack = json!({"botToken": "xoxb-NOPLAINTEXT-bot", "appToken": "xapp-NOPLAINTEXT-app"});
    let r = app
        .post(
            &format!("/tenants/{id}/channels"),
            &json!({"channel": "slack", "credentials": slack}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // An update seals too.
    let r = app
        .patch(
            &format!("/tenants/{id}/channels/slack"),
            &json!({"credentials": {"signingSecret": "NOPLAINTEXTsigning"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    app.stop().await;

    let needles = ["AAnoPLAINTEXTonDISK", "NOPLAINTEXT"];
    let mut conn = db.connect();
    let stored: Vec<(String, Option<String>)> = channels_table::table
        .select((
            channels_table::credentials,
            channels_table::credentials_key_id,
        ))
        .load(&mut conn)
        .unwrap();
    assert_eq!(stored.len(), 2);
    for (credentials, key_id) in &stored {
        assert!(credentials.starts_with("v1.test."), "{credentials}");
        assert_eq!(key_id.as_deref(), Some("test"));
        for needle in needles {
            assert!(!credentials.contains(needle));
        }
    }
    if let AnyConnection::Sqlite(c) = &mut conn {
        c.batch_execute("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    }
    drop(conn);
    let files = db.sqlite_files();
    assert_eq!(files.is_empty(), db.backend() == "postgres");
    for (file, bytes) in files {
        for needle in needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle} found in {}",
                file.display()
            );
        }
    }
}

#[test]
fn rotation_reseals_every_row_and_the_old_key_can_go() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let k1 = ring(K1);
    let tenants = seed(&mut conn, &k1, 3);
    // A row written before encryption at rest: plaintext JSON, no key id.
    let legacy = json!({"botToken": telegram_token(0)}).to_string();
    set_raw(&mut conn, &tenants[0], "telegram", &(legacy.clone(), None));
    let before = plaintexts(&mut conn, &k1);
    assert_eq!(before.len(), 6);

    let both = ring(&format!("{K2},{K1}"));
    let k2 = ring(K2);
    // Without key 1 the rows do not open; the error names the row, not the secret.
    let err = channels::list_all(&mut conn, &k2).unwrap_err();
    assert!(matches!(err, StoreError::Credentials { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("not in the key ring"), "{msg}");
    assert!(
        !msg.contains("sealedTOKEN") && !msg.contains("MTEx"),
        "{msg}"
    );

    // One batch, then the rest: rotation resumes where it stopped.
    let first = key_rotation::reseal_batch(&mut conn, &both, Scope::NotActive, 2).unwrap();
    assert_eq!((first.selected, first.resealed, first.skipped), (2, 2, 0));
    let usage = key_rotation::usage(&mut conn, &both).unwrap();
    assert_eq!(usage.active, 2);
    assert_eq!(usage.pending(), 4);
    let mut batches = 0;
    let rest = key_rotation::reseal_all(&mut conn, &both, Scope::NotActive, 2, |_, _| batches += 1)
        .unwrap();
    assert_eq!(rest.resealed, 4);
    assert_eq!(batches, 2);
    let usage = key_rotation::usage(&mut conn, &both).unwrap();
    assert_eq!((usage.active, usage.pending()), (6, 0));
    // Running it again finds nothing to do.
    let again = key_rotation::reseal_all(&mut conn, &both, Scope::NotActive, 2, |_, _| {}).unwrap();
    assert_eq!(again.resealed, 0);

    // Key 1 removed: everything still opens, to the same values; the legacy row is sealed.
    assert_eq!(plaintexts(&mut conn, &k2), before);
    let (stored, key_id) = raw(&mut conn, &tenants[0], "telegram");
    assert!(stored.starts_with("v1.k2.") && key_id.as_deref() == Some("k2"));
    // The rotation wrote no config change.
    assert!(!stored.contains("sealedTOKEN"));
}

#[test]
fn a_concurrent_update_is_not_overwritten_by_rotation() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let k1 = ring(K1);
    let tenants = seed(&mut conn, &k1, 1);
    let both = ring(&format!("{K2},{K1}"));
    // What a rotation read…
    let read = raw(&mut conn, &tenants[0], "telegram");
    // …is replaced by an API update (under the active key) before its write.
    let update = tenant_core::ChannelUpdate::parse(
        ChannelKind::Telegram,
        None,
        None,
        Some(&json!({"botToken": "1:AAnewerVALUE"})),
    )
    .unwrap();
    channels::update(
        &mut conn,
        &tenants[0].id,
        ChannelKind::Telegram,
        update,
        tenant_core::now(),
        &both,
    )
    .unwrap();
    // The compare-and-swap on the old ciphertext finds nothing to replace.
    let n = diesel::update(
        channels_table::table
            .filter(channels_table::tenant_id.eq(tenants[0].id.to_string()))
            .filter(channels_table::credentials.eq(&read.0)),
    )
    .set(channels_table::credentials.eq("clobbered"))
    .execute(&mut conn)
    .unwrap();
    assert_eq!(n, 0);
    let done = key_rotation::reseal_all(&mut conn, &both, Scope::NotActive, 10, |_, _| {}).unwrap();
    assert_eq!(done.resealed, 1, "only the discord row was left under k1");
    let c = channels::find(&mut conn, &tenants[0].id, ChannelKind::Telegram, &both).unwrap();
    assert_eq!(
        c.credentials.get("botToken").map(|v| v.expose()),
        Some("1:AAnewerVALUE")
    );
}

#[test]
fn tampered_or_moved_ciphertexts_are_refused() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let keys = ring(K1);
    let ts = seed(&mut conn, &keys, 2);
    let refused = |conn: &mut AnyConnection, t: &Tenant, kind: ChannelKind| {
        let err = channels::find(conn, &t.id, kind, &keys).unwrap_err();
        let StoreError::Credentials {
            tenant_id,
            kind: k,
            reason,
        } = &err
        else {
            panic!("expected a credentials error, got {err}");
        };
        assert_eq!(tenant_id, &t.id.to_string());
        assert_eq!(k, kind.as_str());
        let msg = err.to_string();
        assert!(
            !msg.contains("sealedTOKEN") && !msg.contains("sealed.discord"),
            "{msg}"
        );
        reason.clone()
    };

    // Tenant 0's Telegram ciphertext copied onto tenant 1's Telegram row.
    let original = raw(&mut conn, &ts[1], "telegram");
    let moved = raw(&mut conn, &ts[0], "telegram");
    set_raw(&mut conn, &ts[1], "telegram", &moved);
    let reason = refused(&mut conn, &ts[1], ChannelKind::Telegram);
    assert!(reason.contains("authentication failed"), "{reason}");
    // The gateway config does not silently skip it either.
    let err = tenant_service::gateway_config::load_sources(&mut conn, false, &keys).unwrap_err();
    assert!(err.to_string().contains(&ts[1].id.to_string()), "{err}");
    set_raw(&mut conn, &ts[1], "telegram", &original);
    assert!(channels::find(&mut conn, &ts[1].id, ChannelKind::Telegram, &keys).is_ok());

    // Telegram's ciphertext on the same tenant's Discord row.
    let discord = raw(&mut conn, &ts[0], "discord");
    set_raw(&mut conn, &ts[0], "discord", &moved);
    refused(&mut conn, &ts[0], ChannelKind::Discord);
    set_raw(&mut conn, &ts[0], "discord", &discord);

    // One flipped character of the ciphertext.
    let (text, key_id) = raw(&mut conn, &ts[0], "telegram");
    let last = text.chars().last().unwrap();
    let flipped = format!(
        "{}{}",
        &text[..text.len() - 1],
        if last == 'A' { 'B' } else { 'A' }
    );
    set_raw(&mut conn, &ts[0], "telegram", &(flipped, key_id.clone()));
    refused(&mut conn, &ts[0], ChannelKind::Telegram);
    // A recorded key id that disagrees with the envelope's, and plaintext under a key id.
    set_raw(
        &mut conn,
        &ts[0],
        "telegram",
        &(text.clone(), Some("other".into())),
    );
    refused(&mut conn, &ts[0], ChannelKind::Telegram);
    set_raw(
        &mut conn,
        &ts[0],
        "telegram",
        &(r#"{"botToken":"1:x"}"#.into(), key_id),
    );
    refused(&mut conn, &ts[0], ChannelKind::Telegram);
}

/// Runs the binary on `db` with a clean environment plus `env`.
fn run(db: &TestDb, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(binary());
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("SAAS_") || key == "DATABASE_URL" || key == "RUST_LOG" {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd.env("DATABASE_URL", db.url())
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("run moltbot-saas")
}

fn stdout_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn keys_rotate_on_the_command_line() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let test = moltbot_saas_tests::test_keys();
    seed(&mut conn, &test, 2);
    let before = plaintexts(&mut conn, &test);

    // A fresh key from `keys generate`, put first in the ring.
    let generated = stdout_json(&run(&db, &[], &["keys", "generate", "--id", "next"]));
    let entry = generated["key"].as_str().unwrap().to_owned();
    assert!(entry.starts_with("next:"), "{entry}");
    let both = format!("{entry},{TEST_ENCRYPTION_KEYS}");
    let env = [("SAAS_ENCRYPTION_KEYS", both.as_str())];
    let status = stdout_json(&run(&db, &env, &["keys", "status"]));
    assert_eq!(status["activeKey"], "next");
    assert_eq!(status["pending"], 4);
    assert_eq!(status["rows"]["otherKeys"]["test"], 4);

    let out = run(&db, &env, &["keys", "rotate", "--batch-size", "3"]);
    let rotated = stdout_json(&out);
    assert_eq!(rotated["resealed"], 4, "{rotated}");
    assert_eq!(rotated["remaining"], 0);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!log.contains(&entry[5..]), "the log shows no key material");

    // The old key removed: everything opens.
    assert_eq!(plaintexts(&mut conn, &ring(&entry)), before);
    let status = stdout_json(&run(
        &db,
        &[("SAAS_ENCRYPTION_KEYS", entry.as_str())],
        &["keys", "status"],
    ));
    assert_eq!(status["rows"]["active"], 4);
    let status = stdout_json(&run(
        &db,
        &[("SAAS_ENCRYPTION_KEYS", K1)],
        &["keys", "status"],
    ));
    assert_eq!(status["missingKeys"], json!(["next"]), "{status}");

    // A bad ring is refused naming the variable, without echoing it.
    let out = run(
        &db,
        &[("SAAS_ENCRYPTION_KEYS", "k1:c2hvcnQ=")],
        &["keys", "status"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SAAS_ENCRYPTION_KEYS"), "{err}");
    assert!(!err.contains("c2hvcnQ"), "{err}");
}

#[tokio::test]
async fn plaintext_rows_are_sealed_on_start() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let test = moltbot_saas_tests::test_keys();
    let ts = seed(&mut conn, &test, 1);
    let legacy = json!({"botToken": "1:AAlegacyPLAIN"}).to_string();
    set_raw(&mut conn, &ts[0], "telegram", &(legacy, None));
    // Readable before the start (an older replica may still write them)…
    assert!(channels::find(&mut conn, &ts[0].id, ChannelKind::Telegram, &test).is_ok());
    let app = spawn_app(&db).await;
    // …and sealed by it.
    let (stored, key_id) = raw(&mut conn, &ts[0], "telegram");
    assert!(stored.starts_with("v1.test.") && key_id.as_deref() == Some("test"));
    let r = app
        .get(&format!("/tenants/{}/channels/telegram", ts[0].id))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["credentials"]["botToken"]["set"], true, "{}", r.text);
    app.stop().await;
}

#[actix_web::test]
async fn production_refuses_to_start_without_keys() {
    let db = TestDb::new();
    let mut settings = test_settings(&db);
    settings.environment = Environment::Production;
    settings.encryption_keys = None;
    let err = Application::build(&settings).err().expect("refused");
    assert!(matches!(err, StartupError::Keys(_)), "{err}");
    assert!(err.to_string().contains("SAAS_ENCRYPTION_KEYS"), "{err}");
}

#[tokio::test]
async fn the_development_key_is_generated_once_and_kept() {
    let db = TestDb::new();
    let dir = std::env::temp_dir().join(format!("saas-devkey-{}", uuid::Uuid::new_v4().simple()));
    let mut settings = test_settings(&db);
    settings.encryption_keys = None;
    settings.data_dir = dir.clone();
    let app = spawn_app_with(settings.clone()).await;
    let id = app.create_tenant("Dev Key").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post(
            &format!("/tenants/{id}/channels"),
            &json!({"channel": "telegram", "credentials": {"botToken": "1:AAdevKEY"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    app.stop().await;
    let key_file = dir.join("encryption.key");
    let first = std::fs::read(&key_file).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let again = spawn_app_with(settings).await;
    let r = again.get(&format!("/tenants/{id}/channels/telegram")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["state"], "ready", "{}", r.text);
    again.stop().await;
    assert_eq!(std::fs::read(&key_file).unwrap(), first, "the key was kept");
    let mut conn = db.connect();
    let (stored, key_id) = channels_table::table
        .select((
            channels_table::credentials,
            channels_table::credentials_key_id,
        ))
        .first::<(String, Option<String>)>(&mut conn)
        .unwrap();
    assert!(stored.starts_with("v1.dev."), "{stored}");
    assert_eq!(key_id.as_deref(), Some("dev"));
    std::fs::remove_dir_all(dir).unwrap();
}
