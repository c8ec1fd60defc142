//! Runs short phases against a real server (the test harness's, on a fresh database) so the
//! driver cannot drift from the API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use loaddriver::{Options, run};
use moltbot_saas_tests::{TestDb, spawn_app};
use serde_json::{Map, Value, json};

fn options(address: &str, token: &str, gateway: &str, phases: &str) -> Options {
    let mut tags = Map::new();
    tags.insert("run".into(), json!(1));
    Options {
        base_url: loaddriver::target::check_base_url(address).unwrap(),
        phases: phases.split(',').map(str::to_owned).collect(),
        tenants: 12,
        concurrency: 6,
        config_concurrency: 2,
        // Phases end at `max_requests`; the time only bounds a phase on a machine so loaded
        // that even 60 requests take long (a 300 ms budget once let a phase end empty).
        duration: Duration::from_secs(20),
        phase_timeout: Duration::from_secs(30),
        max_requests: 60,
        request_timeout: Duration::from_secs(10),
        token: Some(token.to_owned()),
        gateway_token: Some(gateway.to_owned()),
        tenant_keys: false,
        server_pid: Some(std::process::id()),
        page_size: 4,
        save_tenants: None,
        load_tenants: None,
        tags,
        after_phase: None,
    }
}

fn phase<'a>(lines: &'a [Value], name: &str) -> &'a Value {
    lines.iter().find(|l| l["phase"] == name).unwrap()
}

#[tokio::test]
async fn phases_run_without_errors_against_a_real_server() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let opts = options(
        &app.address,
        &app.operator_token,
        &app.gateway_token,
        "health,create,channels,credentials,reads,config,list",
    );
    let mut out = Vec::new();
    let lines = run(opts, &mut out).await.unwrap();

    let printed: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(printed, lines);
    let names: Vec<&str> = lines.iter().map(|l| l["phase"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "health",
            "create",
            "channels",
            "credentials",
            "reads",
            "config",
            "config_304",
            "list"
        ]
    );
    for l in &lines {
        assert_eq!(l["errors"], 0, "{l}");
        assert!(l["count"].as_u64().unwrap() > 0, "{l}");
        assert_eq!(l["count"], l["ok"]);
        assert_eq!(l["run"], 1);
        assert!(l["count"].as_u64().unwrap() <= 60);
        assert!(l["p50_ms"].as_f64().unwrap() <= l["max_ms"].as_f64().unwrap());
        assert!(l["server_peak_rss_mb"].as_f64().unwrap() > 0.0, "{l}");
        assert!(l.get("server_cpu_us_per_req").is_some(), "{l}");
    }
    assert_eq!(phase(&lines, "create")["count"], 12);
    assert_eq!(phase(&lines, "channels")["count"], 24);
    assert!(phase(&lines, "config")["bytes"].as_u64().unwrap() > 0);
    assert_eq!(phase(&lines, "config_304")["bytes"], 0);

    // The server holds what the phases sent: twelve tenants, two served channels each, and an
    // audit row for each create (the tenant's and its key's), channel and rotation.
    let rotations = phase(&lines, "credentials")["ok"].as_i64().unwrap();
    let counts = db.row_counts();
    assert_eq!(counts.audit_log, 12 * 2 + 24 + rotations);
    assert_eq!(counts.tenants, 12);
    assert_eq!(counts.channels, 24);
    app.stop().await;
}

#[tokio::test]
async fn endpoint_and_key_phases_write_what_they_say_and_the_hook_runs_after_each() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let dir = std::env::temp_dir().join(format!("loaddriver-hook-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("phases.log");
    let opts = Options {
        after_phase: Some(format!("echo \"$PHASE\" >> '{}'", log.display())),
        ..options(
            &app.address,
            &app.operator_token,
            &app.gateway_token,
            "create,endpoints,endpoint-updates,keys",
        )
    };
    let lines = run(opts, &mut Vec::new()).await.unwrap();
    for l in &lines {
        assert_eq!(l["errors"], 0, "{l}");
        assert!(l["ok"].as_u64().unwrap() > 0, "{l}");
    }
    assert_eq!(phase(&lines, "endpoints")["ok"], 12);
    let changes = phase(&lines, "endpoint-updates")["ok"].as_i64().unwrap();
    let keys = phase(&lines, "keys")["ok"].as_i64().unwrap();
    let counts = db.row_counts();
    assert_eq!(counts.webhook_endpoints, 12);
    // Each tenant's first key, and one per `keys` request.
    assert_eq!(counts.api_keys, 12 + keys);
    assert_eq!(counts.audit_log, 12 * 2 + 12 + changes + keys);
    let ran = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        ran.lines().collect::<Vec<_>>(),
        ["create", "endpoints", "endpoint-updates", "keys"]
    );
    let _ = std::fs::remove_dir_all(dir);
    app.stop().await;
}

#[tokio::test]
async fn saved_tenants_are_read_by_a_later_run_with_their_own_keys() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let dir = std::env::temp_dir().join(format!("loaddriver-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tenants.jsonl");
    let create = Options {
        save_tenants: Some(file.clone()),
        ..options(
            &app.address,
            &app.operator_token,
            &app.gateway_token,
            "create",
        )
    };
    run(create, &mut Vec::new()).await.unwrap();
    // A wrong operator token: the reads pass only with each tenant's own API key, and nothing
    // is listed (which would need the operator).
    let reads = Options {
        load_tenants: Some(file),
        tenant_keys: true,
        ..options(
            &app.address,
            "wrong-token-wrong-token-wrong-token",
            "x",
            "reads",
        )
    };
    let lines = run(reads, &mut Vec::new()).await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let reads = phase(&lines, "reads");
    assert_eq!(reads["errors"], 0, "{reads}");
    assert_eq!(reads["ok"], 60, "{reads}");
    app.stop().await;
}

#[tokio::test]
async fn failures_are_counted_not_fatal() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let opts = options(
        &app.address,
        "wrong-token-wrong-token-wrong-token",
        "x",
        "create,list",
    );
    let lines = run(opts, &mut Vec::new()).await.unwrap();
    let create = phase(&lines, "create");
    assert_eq!(create["errors"], 12);
    assert_eq!(create["statuses"], json!({"401": 12}));
    assert!(create["error_samples"][0].as_str().unwrap().contains("401"));
    assert_eq!(phase(&lines, "list")["ok"], 0);
    app.stop().await;
}

#[tokio::test]
async fn phases_needing_tenants_report_when_there_are_none() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let opts = options(
        &app.address,
        &app.operator_token,
        &app.gateway_token,
        "reads",
    );
    let err = run(opts, &mut Vec::new()).await.unwrap_err();
    assert!(err.contains("no tenants"), "{err}");
    app.stop().await;
}

#[tokio::test]
async fn the_floor_server_answers_the_health_phase() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let mut floor = Command::new(env!("CARGO_BIN_EXE_floor"))
        .arg("127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(floor.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let address = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    let opts = Options {
        server_pid: Some(floor.id()),
        ..options(&format!("http://{address}"), "x", "x", "health")
    };
    let lines = run(opts, &mut Vec::new()).await;
    let _ = floor.kill();
    let _ = floor.wait();
    let lines = lines.unwrap();
    let health = phase(&lines, "health");
    assert!(health["ok"].as_u64().unwrap() > 0, "{health}");
    assert_eq!(health["errors"], 0, "{health}");
    assert!(
        health["server_cpu_us_per_req"].as_f64().is_some(),
        "{health}"
    );

    // It listens on loopback only.
    let refused = Command::new(env!("CARGO_BIN_EXE_floor"))
        .arg("0.0.0.0:0")
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!refused.success());
}
