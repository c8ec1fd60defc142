//! `moltbot-saas config render` and `config sync`, run as a real process on a test database:
//! what they print and write, file modes, writing only on change, secrets in env files, one file
//! per tenant, and refused option combinations.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use moltbot_saas_tests::{TestDb, test_keys};
use serde_json::{Value, json};
use tenant_core::{NewChannel, NewTenant, Tenant, TenantUpdate};
use tenant_store::{AnyConnection, channels, tenants};

use crate::cli::binary;

const TELEGRAM_TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
const OTHER_TELEGRAM_TOKEN: &str = "987654321:ZZyXwvUT9s8r7q6p5o4n3m2l1k0jihgfed";

/// A scratch directory, removed on drop.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    pub(crate) fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "moltbot-saas-config-{}",
            uuid::Uuid::new_v4().simple()
        ));
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The binary on `db`, with a clean configuration environment.
pub(crate) fn command(db: &TestDb) -> Command {
    let mut cmd = Command::new(binary());
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("SAAS_") || key == "DATABASE_URL" || key == "RUST_LOG" {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd.env("DATABASE_URL", db.url()).env(
        "SAAS_ENCRYPTION_KEYS",
        moltbot_saas_tests::TEST_ENCRYPTION_KEYS,
    );
    cmd
}

/// Runs the binary with `args` on `db`, with a clean configuration environment.
pub(crate) fn run(db: &TestDb, args: &[&str]) -> Output {
    command(db).args(args).output().expect("run moltbot-saas")
}

/// [`run`] on a blocking thread, for a test that keeps a server's connections open: a runtime
/// blocked for seconds misses the server closing an idle connection, and the next request on
/// it fails.
pub(crate) async fn run_awaited(db: &TestDb, args: &[&str]) -> Output {
    let mut cmd = command(db);
    cmd.args(args);
    tokio::task::spawn_blocking(move || cmd.output().expect("run moltbot-saas"))
        .await
        .expect("the command's thread")
}

#[track_caller]
pub(crate) fn succeed(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[track_caller]
fn json_stdout(out: &Output) -> Value {
    let text = succeed(out);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {text}"))
}

#[track_caller]
fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON ({e}): {text}", path.display()))
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Identifies one version of a file: a rewrite (atomic rename of a new file) changes the inode.
fn version(path: &Path) -> (u64, i64, i64) {
    let m = fs::metadata(path).unwrap();
    (m.ino(), m.mtime(), m.mtime_nsec())
}

fn tenant(conn: &mut AnyConnection, name: &str) -> Tenant {
    tenants::insert(
        conn,
        NewTenant::parse(name, None, None).unwrap(),
        tenant_core::now(),
    )
    .unwrap()
}

fn telegram(conn: &mut AnyConnection, tenant: &Tenant, token: &str) {
    let new =
        NewChannel::parse("telegram", None, None, Some(&json!({ "botToken": token }))).unwrap();
    channels::insert(conn, &tenant.id, new, tenant_core::now(), &test_keys()).unwrap();
}

fn update(conn: &mut AnyConnection, tenant: &Tenant, name: Option<&str>, status: Option<&str>) {
    let update = TenantUpdate::parse(name, None, None, status).unwrap();
    tenants::update(conn, &tenant.id, update, tenant_core::now()).unwrap();
}

fn agent_ids(doc: &Value) -> Vec<String> {
    doc["agents"]["entries"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn render_prints_the_config_of_active_tenants() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let acme = tenant(&mut conn, "Acme");
    let globex = tenant(&mut conn, "Globex");
    let gone = tenant(&mut conn, "Suspended Co");
    telegram(&mut conn, &acme, TELEGRAM_TOKEN);
    telegram(&mut conn, &globex, OTHER_TELEGRAM_TOKEN);
    update(&mut conn, &gone, None, Some("suspended"));

    let text = succeed(&run(&db, &["config", "render"]));
    let doc: Value = serde_json::from_str(&text).unwrap();
    let mut expected = vec![acme.agent_id.to_string(), globex.agent_id.to_string()];
    expected.sort();
    assert_eq!(agent_ids(&doc), expected, "{text}");
    assert_eq!(
        doc["channels"]["telegram"]["accounts"][acme.account_id.as_str()]["botToken"],
        TELEGRAM_TOKEN
    );
    assert!(doc["bindings"].as_array().unwrap().contains(&json!({
        "agentId": acme.agent_id.as_str(),
        "match": {"channel": "telegram", "accountId": acme.account_id.as_str()}
    })));
    assert!(!text.contains(gone.agent_id.as_str()), "{text}");
    // Same input, same bytes.
    assert_eq!(succeed(&run(&db, &["config", "render"])), text);

    let legacy = json_stdout(&run(&db, &["config", "render", "--dialect", "legacy"]));
    assert_eq!(
        legacy["agents"]["list"].as_array().unwrap().len(),
        2,
        "{legacy:#}"
    );

    // One tenant's own document.
    let id = acme.id.to_string();
    let own = json_stdout(&run(&db, &["config", "render", "--tenant", &id]));
    assert_eq!(agent_ids(&own), [acme.agent_id.to_string()]);
    assert!(
        !own.to_string().contains(globex.account_id.as_str()),
        "{own:#}"
    );

    // The env mode puts references in the document, and the document alone is printed.
    let text = succeed(&run(&db, &["config", "render", "--secrets", "env"]));
    assert!(!text.contains(TELEGRAM_TOKEN), "{text}");
    let doc: Value = serde_json::from_str(&text).unwrap();
    let reference = doc["channels"]["telegram"]["accounts"][acme.account_id.as_str()]["botToken"]
        .as_str()
        .unwrap();
    assert!(
        reference.starts_with("${") && reference.ends_with('}'),
        "{reference}"
    );
}

#[test]
fn render_out_writes_a_private_file_only_when_it_changes() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let acme = tenant(&mut conn, "Acme");
    telegram(&mut conn, &acme, TELEGRAM_TOKEN);
    let dir = Scratch::new();
    let out = dir.path("openclaw.json");
    let out_arg = out.to_str().unwrap();

    let printed = succeed(&run(&db, &["config", "render"]));
    let report = json_stdout(&run(&db, &["config", "render", "--out", out_arg]));
    assert_eq!(report["written"], json!([out_arg]), "{report:#}");
    assert_eq!(report["removed"], json!([]));
    assert!(report["revision"].as_i64().unwrap() > 0, "{report:#}");
    assert_eq!(mode(&out), 0o600);
    assert_eq!(
        fs::read_to_string(&out).unwrap(),
        printed,
        "the printed document"
    );
    let first = version(&out);

    let report = json_stdout(&run(&db, &["config", "render", "--out", out_arg]));
    assert_eq!(report["written"], json!([]), "unchanged: {report:#}");
    assert_eq!(version(&out), first, "not rewritten");

    update(&mut conn, &acme, Some("Acme Renamed"), None);
    let report = json_stdout(&run(&db, &["config", "render", "--out", out_arg]));
    assert_eq!(report["written"], json!([out_arg]), "{report:#}");
    assert_ne!(version(&out), first);
    assert_eq!(mode(&out), 0o600);
    let doc = read_json(&out);
    assert_eq!(
        doc["agents"]["entries"][acme.agent_id.as_str()]["name"],
        "Acme Renamed"
    );
    assert_eq!(
        file_names(&dir.0),
        ["openclaw.json"],
        "no temporary files left"
    );
}

#[test]
fn sync_writes_once_and_again_only_after_a_change() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let acme = tenant(&mut conn, "Acme");
    telegram(&mut conn, &acme, TELEGRAM_TOKEN);
    let dir = Scratch::new();
    let out = dir.path("gateway/openclaw.json");
    let out_arg = out.to_str().unwrap();

    succeed(&run(&db, &["config", "sync", "--out", out_arg]));
    assert_eq!(mode(&out), 0o600);
    let doc = read_json(&out);
    assert_eq!(agent_ids(&doc), [acme.agent_id.to_string()]);
    assert_eq!(
        doc["channels"]["telegram"]["accounts"][acme.account_id.as_str()]["botToken"],
        TELEGRAM_TOKEN
    );
    assert!(
        !dir.path("gateway/openclaw.json.env").exists(),
        "no env file inline"
    );
    let first = version(&out);
    let bytes = fs::read(&out).unwrap();

    // Nothing changed: the file is left alone (a gateway watching it does not reload).
    succeed(&run(&db, &["config", "sync", "--out", out_arg]));
    assert_eq!(version(&out), first, "not rewritten");
    assert_eq!(fs::read(&out).unwrap(), bytes);

    // A change that does not alter the document (the plan) bumps the revision but writes
    // nothing either.
    let revision = tenant_store::config_revision::current(&mut conn).unwrap();
    let plan = TenantUpdate::parse(None, None, Some("pro"), None).unwrap();
    tenants::update(&mut conn, &acme.id, plan, tenant_core::now()).unwrap();
    assert!(tenant_store::config_revision::current(&mut conn).unwrap() > revision);
    succeed(&run(&db, &["config", "sync", "--out", out_arg]));
    assert_eq!(version(&out), first, "same document, not rewritten");

    let globex = tenant(&mut conn, "Globex");
    succeed(&run(&db, &["config", "sync", "--out", out_arg]));
    let second = version(&out);
    assert_ne!(second, first, "a new tenant is a new document");
    assert!(agent_ids(&read_json(&out)).contains(&globex.agent_id.to_string()));

    update(&mut conn, &acme, None, Some("suspended"));
    succeed(&run(&db, &["config", "sync", "--out", out_arg]));
    assert_ne!(version(&out), second);
    let doc = read_json(&out);
    assert_eq!(agent_ids(&doc), [globex.agent_id.to_string()]);
    assert!(!fs::read_to_string(&out).unwrap().contains(TELEGRAM_TOKEN));
    assert_eq!(mode(&out), 0o600);
    assert_eq!(file_names(&dir.path("gateway")), ["openclaw.json"]);
}

#[test]
fn env_secrets_go_to_a_private_env_file() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let acme = tenant(&mut conn, "Acme");
    let globex = tenant(&mut conn, "Globex");
    telegram(&mut conn, &acme, TELEGRAM_TOKEN);
    telegram(&mut conn, &globex, OTHER_TELEGRAM_TOKEN);
    let dir = Scratch::new();
    let out = dir.path("openclaw.json");
    let env = dir.path("openclaw.json.env");

    succeed(&run(
        &db,
        &[
            "config",
            "sync",
            "--secrets",
            "env",
            "--out",
            out.to_str().unwrap(),
        ],
    ));
    assert_eq!(mode(&out), 0o600);
    assert_eq!(mode(&env), 0o600);
    let text = fs::read_to_string(&out).unwrap();
    for token in [TELEGRAM_TOKEN, OTHER_TELEGRAM_TOKEN] {
        assert!(
            !text.contains(token),
            "the document never holds a token: {text}"
        );
        assert!(!text.contains(token.split_once(':').unwrap().1), "{text}");
    }
    let doc: Value = serde_json::from_str(&text).unwrap();
    let env_text = fs::read_to_string(&env).unwrap();
    for (t, token) in [(&acme, TELEGRAM_TOKEN), (&globex, OTHER_TELEGRAM_TOKEN)] {
        let var = tenant_configgen_var(t);
        assert_eq!(
            doc["channels"]["telegram"]["accounts"][t.account_id.as_str()]["botToken"],
            format!("${{{var}}}"),
            "{text}"
        );
        assert!(
            env_text.lines().any(|l| l == format!("{var}={token}")),
            "{env_text}"
        );
    }
    assert!(
        !env_text.contains("agents"),
        "the env file holds only variables"
    );

    // Back to inline secrets: the stale env file and its credentials go away.
    succeed(&run(
        &db,
        &[
            "config",
            "sync",
            "--secrets",
            "inline",
            "--out",
            out.to_str().unwrap(),
        ],
    ));
    assert!(!env.exists(), "the env file of the earlier run is removed");
    assert!(fs::read_to_string(&out).unwrap().contains(TELEGRAM_TOKEN));
}

/// The variable the env mode uses for a tenant's telegram bot token.
fn tenant_configgen_var(t: &Tenant) -> String {
    format!(
        "TELEGRAM_BOT_TOKEN_{}",
        t.account_id.as_str().to_ascii_uppercase().replace('-', "_")
    )
}

#[test]
fn per_tenant_sync_writes_one_file_per_tenant_and_removes_the_gone() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let acme = tenant(&mut conn, "Acme");
    let globex = tenant(&mut conn, "Globex");
    let paused = tenant(&mut conn, "Paused");
    telegram(&mut conn, &acme, TELEGRAM_TOKEN);
    telegram(&mut conn, &paused, OTHER_TELEGRAM_TOKEN);
    update(&mut conn, &paused, None, Some("suspended"));
    let dir = Scratch::new();
    let out = dir.path("gateways");
    let out_arg = out.to_str().unwrap();
    // A file of someone else's in the directory.
    fs::create_dir_all(&out).unwrap();
    fs::write(out.join("README.txt"), "not ours").unwrap();

    succeed(&run(
        &db,
        &["config", "sync", "--mode", "per-tenant", "--out", out_arg],
    ));
    let file = |t: &Tenant| out.join(format!("{}.json", t.account_id.as_str()));
    let mut expected: Vec<String> = [&acme, &globex, &paused]
        .iter()
        .map(|t| format!("{}.json", t.account_id.as_str()))
        .chain(["README.txt".to_owned()])
        .collect();
    expected.sort();
    assert_eq!(file_names(&out), expected);
    for t in [&acme, &globex, &paused] {
        assert!(t.account_id.as_str().starts_with("tenant-"));
        assert_eq!(mode(&file(t)), 0o600);
    }
    let own = read_json(&file(&acme));
    assert_eq!(agent_ids(&own), [acme.agent_id.to_string()]);
    assert_eq!(
        own["channels"]["telegram"]["accounts"][acme.account_id.as_str()]["botToken"],
        TELEGRAM_TOKEN
    );
    assert!(!own.to_string().contains(globex.agent_id.as_str()));
    assert_eq!(
        agent_ids(&read_json(&file(&globex))),
        [globex.agent_id.to_string()]
    );
    let suspended = fs::read_to_string(file(&paused)).unwrap();
    let doc: Value = serde_json::from_str(&suspended).unwrap();
    assert!(
        agent_ids(&doc).is_empty(),
        "a suspended tenant's gateway serves nothing: {suspended}"
    );
    assert!(!suspended.contains(OTHER_TELEGRAM_TOKEN), "{suspended}");

    // Nothing changed: nothing rewritten.
    let before: Vec<_> = [&acme, &globex, &paused]
        .iter()
        .map(|t| version(&file(t)))
        .collect();
    succeed(&run(
        &db,
        &["config", "sync", "--mode", "per-tenant", "--out", out_arg],
    ));
    let after: Vec<_> = [&acme, &globex, &paused]
        .iter()
        .map(|t| version(&file(t)))
        .collect();
    assert_eq!(after, before);

    // A deleted tenant's file goes; the others and the foreign file stay.
    tenant_store::gateways::fleet_transaction(&mut conn, |f| tenants::delete(f, &globex.id))
        .unwrap();
    let report = json_stdout(&run(
        &db,
        &["config", "render", "--mode", "per-tenant", "--out", out_arg],
    ));
    assert_eq!(report["written"], json!([]), "{report:#}");
    assert_eq!(
        report["removed"],
        json!([file(&globex).to_str().unwrap()]),
        "{report:#}"
    );
    assert!(!file(&globex).exists());
    assert_eq!(
        fs::read_to_string(out.join("README.txt")).unwrap(),
        "not ours"
    );
    assert_eq!(version(&file(&acme)), before[0], "the others untouched");

    // Through `sync` as well, with env files removed together with their documents.
    succeed(&run(
        &db,
        &[
            "config",
            "sync",
            "--mode",
            "per-tenant",
            "--secrets",
            "env",
            "--out",
            out_arg,
        ],
    ));
    let env = out.join(format!("{}.json.env", acme.account_id.as_str()));
    assert_eq!(mode(&env), 0o600);
    assert!(fs::read_to_string(&env).unwrap().contains(TELEGRAM_TOKEN));
    assert!(
        !fs::read_to_string(file(&acme))
            .unwrap()
            .contains(TELEGRAM_TOKEN)
    );
    tenant_store::gateways::fleet_transaction(&mut conn, |f| tenants::delete(f, &acme.id)).unwrap();
    succeed(&run(
        &db,
        &[
            "config",
            "sync",
            "--mode",
            "per-tenant",
            "--secrets",
            "env",
            "--out",
            out_arg,
        ],
    ));
    assert!(!file(&acme).exists());
    assert!(!env.exists());
    let mut left = vec![
        format!("{}.json", paused.account_id.as_str()),
        format!("{}.json.env", paused.account_id.as_str()),
        "README.txt".to_owned(),
    ];
    left.sort();
    assert_eq!(file_names(&out), left);
}

#[test]
fn refused_option_combinations_fail_clearly_and_write_nothing() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let acme = tenant(&mut conn, "Acme");
    telegram(&mut conn, &acme, TELEGRAM_TOKEN);
    let dir = Scratch::new();
    let out = dir.path("openclaw.json");
    let out_arg = out.to_str().unwrap();

    for args in [
        &[
            "config",
            "sync",
            "--dialect",
            "legacy",
            "--secrets",
            "secret-ref",
            "--out",
            out_arg,
        ][..],
        &[
            "config",
            "render",
            "--dialect",
            "legacy",
            "--secrets",
            "secret-ref",
            "--out",
            out_arg,
        ],
        &[
            "config",
            "render",
            "--dialect",
            "legacy",
            "--secrets",
            "secret-ref",
        ],
    ] {
        let run = run(&db, args);
        assert!(!run.status.success(), "{args:?} should fail");
        assert!(
            run.stdout.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&run.stdout)
        );
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains("error"), "{args:?}: {stderr}");
        assert!(stderr.contains("secret-ref"), "{args:?}: {stderr}");
        assert!(stderr.contains("legacy"), "{args:?}: {stderr}");
    }
    assert!(file_names(&dir.0).is_empty(), "nothing written");

    // Other bad input.
    let bad_id = run(&db, &["config", "render", "--tenant", "not-a-uuid"]);
    assert!(!bad_id.status.success());
    let missing_id = uuid::Uuid::new_v4().to_string();
    let missing = run(&db, &["config", "render", "--tenant", &missing_id]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));
    let no_out = run(&db, &["config", "render", "--mode", "per-tenant"]);
    assert!(!no_out.status.success());
    assert!(String::from_utf8_lossy(&no_out.stderr).contains("--out"));
    let bad_dialect = run(&db, &["config", "render", "--dialect", "modern"]);
    assert!(!bad_dialect.status.success());
    assert!(String::from_utf8_lossy(&bad_dialect.stderr).contains("modern"));
    // The secret-ref mode itself works with the current dialect.
    succeed(&run(
        &db,
        &[
            "config",
            "sync",
            "--secrets",
            "secret-ref",
            "--out",
            out_arg,
        ],
    ));
    assert!(!fs::read_to_string(&out).unwrap().contains(TELEGRAM_TOKEN));
    assert_eq!(mode(&dir.path("openclaw.json.env")), 0o600);
}
