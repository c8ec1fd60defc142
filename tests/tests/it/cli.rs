//! The `moltbot-saas` binary's `tenants` commands, run as a real process on a test database.
//!
//! `CARGO_BIN_EXE_moltbot-saas` exists only for the binary's own package, and a binary lying in
//! the target directory may be stale. So the test asks cargo to build the binary (a no-op when
//! it is up to date; cargo releases its build lock before it runs tests) and takes the
//! executable's path from cargo's own report. The process gets its settings through its
//! environment, as an operator's would, and prints JSON on stdout.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

use moltbot_saas_tests::TestDb;
use serde_json::Value;
use tenant_core::TenantId;

/// Builds the binary once per test process; returns its path.
pub(crate) fn binary() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the workspace root");
        let out = Command::new(cargo)
            .current_dir(workspace)
            .args([
                "build",
                "--quiet",
                "--message-format=json",
                "-p",
                "tenant-server",
                "--bin",
                "moltbot-saas",
            ])
            .output()
            .expect("run cargo build");
        assert!(
            out.status.success(),
            "cargo build failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "moltbot-saas")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported the moltbot-saas executable")
    })
}

/// Runs the binary with `args` on `db`, with a clean configuration environment.
fn run(db: &TestDb, args: &[&str]) -> Output {
    run_with(db, &[], args)
}

/// [`run`] with these environment variables too.
fn run_with(db: &TestDb, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(binary());
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("SAAS_") || key == "DATABASE_URL" || key == "RUST_LOG" {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd.env("DATABASE_URL", db.url())
        .envs(env.iter().copied())
        .env(
            "SAAS_ENCRYPTION_KEYS",
            moltbot_saas_tests::TEST_ENCRYPTION_KEYS,
        )
        .env(
            "SAAS_API_KEY_SECRET",
            "cli-test-api-key-secret-0123456789abcdef",
        )
        .args(args)
        .output()
        .expect("run moltbot-saas")
}

fn json_stdout(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[test]
fn tenants_create_and_list() {
    let db = TestDb::new();
    let created = json_stdout(&run(
        &db,
        &["tenants", "create", "--name", "Acme CLI", "--plan", "pro"],
    ));
    assert_eq!(created["name"], "Acme CLI");
    assert_eq!(created["slug"], "acme-cli");
    assert_eq!(created["plan"], "pro");
    assert_eq!(created["status"], "active");
    let key = created["apiKey"].as_str().unwrap();
    assert!(key.starts_with("msk_live_"), "{key}");

    // It is in the database, with an audit row naming the CLI.
    let id: TenantId = created["id"].as_str().unwrap().parse().unwrap();
    let mut conn = db.connect();
    let stored = tenant_store::tenants::find(&mut conn, &id).unwrap();
    assert_eq!(stored.name.as_str(), "Acme CLI");
    let audit = tenant_store::audit::list_for_tenant(&mut conn, &id, 10).unwrap();
    assert!(
        audit
            .iter()
            .any(|r| r.action == "tenant.created" && r.actor_type == "cli"),
        "{audit:?}"
    );

    let second = json_stdout(&run(
        &db,
        &["tenants", "create", "--name", "Globex", "--slug", "globex"],
    ));
    assert_eq!(second["slug"], "globex");

    let listed = json_stdout(&run(&db, &["tenants", "list"]));
    let names: Vec<&str> = listed["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Acme CLI", "Globex"]);
    assert!(listed.get("nextCursor").is_none());
    assert!(
        !String::from_utf8_lossy(&run(&db, &["tenants", "list"]).stdout).contains(key),
        "the list never shows a key"
    );

    // Pages and filters.
    let page = json_stdout(&run(&db, &["tenants", "list", "--limit", "1"]));
    assert_eq!(page["tenants"][0]["name"], "Acme CLI");
    let cursor = page["nextCursor"].as_str().unwrap();
    let page = json_stdout(&run(
        &db,
        &["tenants", "list", "--limit", "1", "--cursor", cursor],
    ));
    assert_eq!(page["tenants"][0]["name"], "Globex");
    assert!(page.get("nextCursor").is_none());
    let pro = json_stdout(&run(&db, &["tenants", "list", "--plan", "pro"]));
    assert_eq!(pro["tenants"].as_array().unwrap().len(), 1);
    assert_eq!(pro["tenants"][0]["name"], "Acme CLI");
}

#[test]
fn bad_input_fails_without_writing() {
    let db = TestDb::new();
    let before = db.row_counts();
    for args in [
        &["tenants", "create", "--name", ""][..],
        &["tenants", "create", "--name", "Acme", "--slug", "Bad Slug"],
        &["tenants", "create", "--name", "Acme", "--plan", "gold"],
        &["tenants", "list", "--limit", "0"],
        &["tenants", "list", "--status", "deleted"],
    ] {
        let out = run(&db, args);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(out.stdout.is_empty(), "{args:?} printed a result");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("error"), "{args:?}: {stderr}");
    }
    let out = run(
        &db,
        &["tenants", "create", "--name", "Acme", "--plan", "gold"],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("plan"));
    assert_eq!(db.row_counts(), before, "nothing written");
    // A taken slug is refused.
    json_stdout(&run(
        &db,
        &["tenants", "create", "--name", "A", "--slug", "acme"],
    ));
    let out = run(&db, &["tenants", "create", "--name", "B", "--slug", "acme"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("acme"));
    assert_eq!(db.row_counts().tenants, 1);
}

/// `gateway install-bridge DIR` writes the embedded plugin, needs no settings or database
/// (an unusable DATABASE_URL does not matter), and is idempotent.
#[test]
fn gateway_install_bridge_copies_the_plugin_idempotently() {
    let dir =
        std::env::temp_dir().join(format!("install-bridge-{}", uuid::Uuid::new_v4().simple()));
    let target = dir.join("openclaw-bridge");
    let install = || {
        Command::new(binary())
            .env("DATABASE_URL", "mysql://not-a-database-this-command-needs")
            .args(["gateway", "install-bridge"])
            .arg(&target)
            .output()
            .expect("run moltbot-saas")
    };
    let first = install();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let said = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(said.contains("moltbot-saas-bridge"), "{said}");
    assert!(said.contains("9 file(s) written"), "{said}");
    assert!(said.contains("SAAS_GATEWAY_BRIDGE_PATH="), "{said}");
    let repo =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../integrations/openclaw-bridge");
    for rel in [
        "openclaw.plugin.json",
        "package.json",
        "index.js",
        "lib/spool.js",
    ] {
        assert_eq!(
            std::fs::read(target.join(rel)).unwrap(),
            std::fs::read(repo.join(rel)).unwrap(),
            "{rel}"
        );
    }
    let second = install();
    assert!(second.status.success());
    let said = String::from_utf8_lossy(&second.stdout).into_owned();
    assert!(said.contains("already installed"), "{said}");
    // A file in the way of the directory: a clear error, exit status 1.
    let blocked = dir.join("file");
    std::fs::write(&blocked, "x").unwrap();
    let out = Command::new(binary())
        .args(["gateway", "install-bridge"])
        .arg(&blocked)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("is not a directory"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn limits_plans_show_and_set() {
    let db = TestDb::new();
    let plans = json_stdout(&run(&db, &["limits", "plans"]));
    assert_eq!(plans["plans"].as_array().unwrap().len(), 4);
    assert_eq!(plans["softLimitPercent"], 80);
    let created = json_stdout(&run(&db, &["tenants", "create", "--name", "Deal CLI"]));
    let id = created["id"].as_str().unwrap();

    let set = json_stdout(&run(
        &db,
        &[
            "limits",
            "set",
            "--tenant",
            id,
            "--plan",
            "enterprise",
            "--max-channels",
            "900",
        ],
    ));
    assert_eq!(set["plan"], "enterprise");
    assert_eq!(set["overrides"], serde_json::json!({"maxChannels": 900}));
    // Another override keeps the first; -1 removes one.
    let set = json_stdout(&run(
        &db,
        &["limits", "set", "--tenant", id, "--request-burst", "7"],
    ));
    assert_eq!(
        set["overrides"],
        serde_json::json!({"maxChannels": 900, "requestBurst": 7})
    );
    let set = json_stdout(&run(
        &db,
        &["limits", "set", "--tenant", id, "--max-channels", "-1"],
    ));
    assert_eq!(set["overrides"], serde_json::json!({"requestBurst": 7}));

    let shown = json_stdout(&run(&db, &["limits", "show", "--tenant", id]));
    assert_eq!(shown["plan"], "enterprise");
    assert_eq!(shown["limits"]["requestBurst"], 7);
    assert_eq!(shown["current"]["messages"], 0);

    // Refused: an unknown plan, an absurd limit; audited changes only.
    let bad = run(&db, &["limits", "set", "--tenant", id, "--plan", "gold"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("plan"));
    let bad = run(
        &db,
        &[
            "limits",
            "set",
            "--tenant",
            id,
            "--messages-per-month",
            "-5",
        ],
    );
    assert!(!bad.status.success());
    let tenant: TenantId = id.parse().unwrap();
    let mut conn = db.connect();
    let changes = tenant_store::audit::list_for_tenant(&mut conn, &tenant, 20)
        .unwrap()
        .into_iter()
        .filter(|r| r.action == "tenant.limits_changed" && r.actor_type == "cli")
        .count();
    assert_eq!(changes, 3);
}

#[test]
fn billing_show_and_sweep() {
    use moltbot_saas_tests::stripe::{STRIPE_PRICES, STRIPE_TEST_KEY, STRIPE_WEBHOOK_SECRET};
    let db = TestDb::new();
    let created = json_stdout(&run(&db, &["tenants", "create", "--name", "Billing CLI"]));
    let id = created["id"].as_str().unwrap();
    let shown = json_stdout(&run(&db, &["billing", "show", "--tenant", id]));
    assert_eq!(
        (shown["state"].as_str(), shown["plan"].as_str()),
        (Some("none"), Some("free"))
    );

    // The sweep needs billing on.
    let off = run(&db, &["billing", "sweep"]);
    assert_eq!(off.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&off.stderr).contains("billing is off"));

    // A tenant whose payment failed eight days ago (grace: 7 days) is suspended by the sweep, once.
    let tenant: TenantId = id.parse().unwrap();
    let now = tenant_core::now();
    let mut row = tenant_store::billing::BillingRow::new(&tenant, now);
    row.subscription_id = Some("sub_cli".into());
    row.subscription_status = Some("past_due".into());
    row.price_id = Some("price_pro_m".into());
    row.past_due_since = Some((now - chrono::Duration::days(8)).naive_utc());
    row.state = "past_due".into();
    tenant_store::billing::save(&mut db.connect(), &row).unwrap();
    let env = [
        ("SAAS_STRIPE_SECRET_KEY", STRIPE_TEST_KEY),
        ("SAAS_STRIPE_WEBHOOK_SECRET", STRIPE_WEBHOOK_SECRET),
        ("SAAS_STRIPE_PRICES", STRIPE_PRICES),
    ];
    let swept = json_stdout(&run_with(&db, &env, &["billing", "sweep"]));
    assert_eq!(swept["suspended"], serde_json::json!([id]));
    let again = json_stdout(&run_with(&db, &env, &["billing", "sweep"]));
    assert_eq!(again["suspended"], serde_json::json!([]));
    let shown = json_stdout(&run(&db, &["billing", "show", "--tenant", id]));
    assert_eq!(shown["state"], "suspended");
    let stored = tenant_store::tenants::find(&mut db.connect(), &tenant).unwrap();
    assert_eq!(stored.status.as_str(), "suspended");
    let out =
        String::from_utf8_lossy(&run_with(&db, &env, &["billing", "sweep"]).stderr).into_owned();
    assert!(!out.contains(STRIPE_TEST_KEY), "{out}");
}
