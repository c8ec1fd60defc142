//! `moltbot-saas backup --out FILE` as a real process: on SQLite, a copy taken while tenants are
//! being created holds every tenant acknowledged before it started, and a server runs on the
//! copy; an existing file is refused; on PostgreSQL it refuses, pointing at PostgreSQL's tools.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use diesel::prelude::*;
use moltbot_saas_tests::{TestDb, spawn_app};
use tenant_store::schema::tenants;
use tenant_store::{Database, DatabaseUrl, PoolConfig};

use crate::cli::binary;

fn backup(url: &str, out: &std::path::Path) -> Output {
    let mut cmd = Command::new(binary());
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("SAAS_") || key == "DATABASE_URL" || key == "RUST_LOG" {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd.env("DATABASE_URL", url)
        .env(
            "SAAS_ENCRYPTION_KEYS",
            moltbot_saas_tests::TEST_ENCRYPTION_KEYS,
        )
        .arg("backup")
        .arg("--out")
        .arg(out)
        .output()
        .expect("run moltbot-saas backup")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_writers_run_holds_every_acknowledged_tenant() {
    let db = TestDb::new();
    let dir = std::env::temp_dir().join(format!("backup-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("copy.db");
    if db.backend() == "postgres" {
        let r = backup(db.url(), &out);
        assert!(!r.status.success());
        assert!(String::from_utf8_lossy(&r.stderr).contains("PostgreSQL"));
        assert!(!out.exists());
        std::fs::remove_dir_all(&dir).unwrap();
        return;
    }
    let app = Arc::new(spawn_app(&db).await);
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..2 {
        let (app, acked, stop) = (app.clone(), acked.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let t = app.create_tenant(&format!("Writer {w}-{n}")).await;
                acked
                    .lock()
                    .unwrap()
                    .push(t["id"].as_str().unwrap().to_owned());
                n += 1;
            }
        }));
    }
    while acked.lock().unwrap().len() < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let before: HashSet<String> = acked.lock().unwrap().iter().cloned().collect();
    let copy = {
        let (url, out) = (db.url().to_owned(), out.clone());
        tokio::task::spawn_blocking(move || backup(&url, &out))
            .await
            .unwrap()
    };
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    assert!(
        copy.status.success(),
        "{}",
        String::from_utf8_lossy(&copy.stderr)
    );
    assert!(out.exists());
    assert!(!dir.join("copy.db.partial").exists());

    // Every tenant acknowledged before the backup started is in the copy.
    let url = DatabaseUrl::parse(&format!("sqlite://{}", out.display())).unwrap();
    let copy_db = Database::connect(&url, &PoolConfig::default()).unwrap();
    let ids: HashSet<String> = tenants::table
        .select(tenants::id)
        .load::<String>(&mut *copy_db.get().unwrap())
        .unwrap()
        .into_iter()
        .collect();
    let missing: Vec<_> = before.difference(&ids).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not in the copy: {missing:?}"
    );

    // An existing file is refused, and left as it was.
    let size = std::fs::metadata(&out).unwrap().len();
    let again = backup(db.url(), &out);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    assert_eq!(std::fs::metadata(&out).unwrap().len(), size);
    std::fs::remove_dir_all(&dir).unwrap();
}
