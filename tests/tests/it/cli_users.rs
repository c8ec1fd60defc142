//! The `operators create` and `users create` commands as real processes: passwords come from
//! standard input and never appear in output or logs, the people created can log in through the
//! API, an invite is printed once, bad input fails without writing.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use moltbot_saas_tests::{TestDb, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::cli::binary;

fn run(db: &TestDb, args: &[&str], stdin: &str) -> Output {
    let mut cmd = Command::new(binary());
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("SAAS_") || key == "DATABASE_URL" || key == "RUST_LOG" {
            cmd.env_remove(key.as_ref());
        }
    }
    let mut child = cmd
        .env("DATABASE_URL", db.url())
        .env(
            "SAAS_ENCRYPTION_KEYS",
            moltbot_saas_tests::TEST_ENCRYPTION_KEYS,
        )
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run moltbot-saas");
    // A command that refuses its arguments exits before reading standard input: the pipe is
    // then closed under the write, which is not the test's failure.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child.wait_with_output().unwrap()
}

fn ok_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn assert_not_in(out: &Output, secret: &str) {
    assert!(!String::from_utf8_lossy(&out.stdout).contains(secret));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(secret));
}

#[tokio::test]
async fn operators_and_users_created_on_the_command_line_can_log_in() {
    let db = TestDb::new();
    let password = format!("cli-{}-passphrase", uuid::Uuid::new_v4().simple());
    let out = run(
        &db,
        &["operators", "create", "--email", "Ops@Example.test"],
        &format!("{password}\n"),
    );
    let op = ok_json(&out);
    assert_eq!(op["email"], "ops@example.test");
    assert_not_in(&out, &password);

    let app = spawn_app(&db).await;
    let tenant = app.create_tenant("Cli Users").await;
    let tenant_id = tenant["id"].as_str().unwrap();
    let out = run(
        &db,
        &[
            "users",
            "create",
            "--tenant",
            tenant_id,
            "--email",
            "owner@cli.test",
            "--role",
            "owner",
            "--password-stdin",
        ],
        &format!("{password}\r\n"),
    );
    let owner = ok_json(&out);
    assert_eq!(
        (owner["role"].as_str(), owner.get("inviteToken")),
        (Some("owner"), None)
    );
    assert_not_in(&out, &password);

    // Both log in with the password given on standard input.
    for body in [
        json!({"email": "ops@example.test", "password": password}),
        json!({"tenant": tenant_id, "email": "owner@cli.test", "password": password}),
    ] {
        let r = app
            .request_as(None, Method::POST, "/auth/login", Some(&body))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }

    // Without a password: an invite, shown once, that the API accepts.
    let out = run(
        &db,
        &[
            "users",
            "create",
            "--tenant",
            tenant_id,
            "--email",
            "new@cli.test",
        ],
        "",
    );
    let invited = ok_json(&out);
    assert_eq!(invited["role"], "member");
    let invite = invited["inviteToken"].as_str().unwrap();
    let r = app
        .request_as(
            None,
            Method::POST,
            "/auth/accept-invite",
            Some(&json!({"token": invite, "password": password})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // The audit log names the command line as the actor.
    let audit = app.get(&format!("/tenants/{tenant_id}/audit")).await;
    let events = audit.body["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["action"] == "user.created" && e["actor"]["type"] == "cli"),
        "{}",
        audit.text
    );
}

#[test]
fn bad_input_is_refused_and_nothing_is_written() {
    let db = TestDb::new();
    // A short password, a bad email, a bad role and tenant, an unknown tenant.
    let cases: [(&[&str], &str); 4] = [
        (
            &["operators", "create", "--email", "ops@example.test"],
            "short\n",
        ),
        (
            &["operators", "create", "--email", "not-an-email"],
            "long enough passphrase\n",
        ),
        (
            &[
                "users", "create", "--tenant", "nope", "--email", "a@b.test", "--role", "boss",
            ],
            "",
        ),
        (
            &[
                "users",
                "create",
                "--tenant",
                "00000000-0000-4000-8000-000000000000",
                "--email",
                "a@b.test",
            ],
            "",
        ),
    ];
    for (args, stdin) in cases {
        let out = run(&db, args, stdin);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("error:"), "{args:?}: {err}");
    }
    let mut conn = db.connect();
    use diesel::prelude::*;
    let n: i64 = tenant_store::schema::operator_users::table
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(n, 0);
}

/// A command exits cleanly however its pool's threads stand: on PostgreSQL a pool that kept
/// opening connections in the background while the command returned crashed the process at exit
/// (libpq's TLS clean-up during another thread's handshake) in about one run in eight.
#[tokio::test]
async fn commands_exit_cleanly_run_after_run() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let tenant = app.create_tenant("Cli Exits").await;
    let tenant_id = tenant["id"].as_str().unwrap();
    app.stop().await;
    for i in 0..40 {
        let email = format!("exit{i}@cli.test");
        let out = run(
            &db,
            &["users", "create", "--tenant", tenant_id, "--email", &email],
            "",
        );
        assert_eq!(ok_json(&out)["email"], email.as_str(), "run {i}");
    }
}

/// `serve` on a first start whose stdout is not a terminal (systemd's journal, a container's
/// log): the generated tokens are not printed anywhere; a warning names the variables to set.
#[test]
fn a_first_start_without_a_terminal_never_prints_the_generated_tokens() {
    let db = TestDb::new();
    let data = std::env::temp_dir().join(format!("first-start-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&data).unwrap();
    let mut cmd = Command::new(binary());
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("SAAS_") || key == "DATABASE_URL" || key == "RUST_LOG" {
            cmd.env_remove(key.as_ref());
        }
    }
    let mut child = cmd
        .env("DATABASE_URL", db.url())
        .env(
            "SAAS_ENCRYPTION_KEYS",
            moltbot_saas_tests::TEST_ENCRYPTION_KEYS,
        )
        .env("SAAS_DATA_DIR", &data)
        .env("SAAS_API_PORT", "0")
        .env("SAAS_MIGRATE_ON_START", "true")
        .env("SAAS_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run moltbot-saas serve");
    // The log goes to standard error: read it until both warnings are there (they follow the
    // `listening` line); standard output is read once the process is gone.
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut lines = Vec::new();
        let mut warned = 0;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            warned += usize::from(line.contains("first start"));
            lines.push(line);
            if warned == 2 {
                break;
            }
        }
        lines
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !reader.is_finished() {
        assert!(
            std::time::Instant::now() < deadline,
            "no first-start warnings within 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let mut text = reader.join().unwrap().join("\n");
    text.push_str(&String::from_utf8_lossy(&out.stdout));
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&data);
    assert!(text.contains("\"listening\""), "{text}");
    for prefix in ["msop_", "msgw_"] {
        assert!(
            !text.contains(prefix),
            "a generated token was printed: {text}"
        );
    }
    for var in ["SAAS_ADMIN_TOKEN", "SAAS_GATEWAY_TOKEN"] {
        assert!(
            text.lines()
                .any(|l| l.contains("first start") && l.contains(var)),
            "no warning names {var}: {text}"
        );
    }
}
