//! How credentials are carried: inline, env references with an env file, SecretRefs.

use super::*;

#[test]
fn env_mode_writes_references_and_an_env_file() {
    let owned = one(
        TenantStatus::Active,
        &[
            (ChannelKind::Telegram, true, json!({"botToken": "1:tg"})),
            (
                ChannelKind::Discord,
                true,
                json!({"token": "it's", "applicationId": "42"}),
            ),
            (
                ChannelKind::Signal,
                true,
                json!({"account": "+15551234567"}),
            ),
        ],
    );
    let o = opts(Dialect::Current, SecretsMode::Env);
    let rendered = render_combined(&fixture::sources(&owned), &o).unwrap();
    let v: Value = serde_json::from_str(&rendered.json).unwrap();
    let acc = |k: &str| v["channels"][k]["accounts"]["tenant-0badcafe"].clone();
    assert_eq!(
        acc("telegram")["botToken"],
        "${TELEGRAM_BOT_TOKEN_TENANT_0BADCAFE}"
    );
    assert_eq!(acc("discord")["token"], "${DISCORD_TOKEN_TENANT_0BADCAFE}");
    assert_eq!(
        acc("discord")["applicationId"],
        "42",
        "not secret: stays inline"
    );
    assert_eq!(
        acc("signal")["account"],
        "${SIGNAL_ACCOUNT_TENANT_0BADCAFE}"
    );
    assert!(!rendered.json.contains("1:tg"), "no secret in the document");
    let env = rendered.env_file.unwrap();
    assert!(env.starts_with('#'));
    let lines: Vec<_> = env.lines().skip(1).collect();
    assert_eq!(
        lines,
        [
            "DISCORD_TOKEN_TENANT_0BADCAFE='it'\\''s'",
            "SIGNAL_ACCOUNT_TENANT_0BADCAFE=+15551234567",
            "TELEGRAM_BOT_TOKEN_TENANT_0BADCAFE=1:tg",
        ]
    );
}

#[test]
fn secret_ref_mode_writes_secret_refs_where_accepted() {
    let owned = one(
        TenantStatus::Active,
        &[
            (ChannelKind::Telegram, true, json!({"botToken": "1:tg"})),
            (
                ChannelKind::Signal,
                true,
                json!({"account": "+15551234567"}),
            ),
        ],
    );
    let rendered = render_combined(
        &fixture::sources(&owned),
        &opts(Dialect::Current, SecretsMode::SecretRef),
    )
    .unwrap();
    let v: Value = serde_json::from_str(&rendered.json).unwrap();
    assert_eq!(
        v["channels"]["telegram"]["accounts"]["tenant-0badcafe"]["botToken"],
        json!({"source": "env", "provider": "default", "id": "TELEGRAM_BOT_TOKEN_TENANT_0BADCAFE"})
    );
    // The gateway's schema has a plain string here.
    assert_eq!(
        v["channels"]["signal"]["accounts"]["tenant-0badcafe"]["account"],
        "${SIGNAL_ACCOUNT_TENANT_0BADCAFE}"
    );
    assert!(
        rendered
            .env_file
            .unwrap()
            .contains("TELEGRAM_BOT_TOKEN_TENANT_0BADCAFE=1:tg\n")
    );
    let legacy = render_combined(
        &fixture::sources(&owned),
        &opts(Dialect::Legacy, SecretsMode::SecretRef),
    );
    assert!(matches!(
        legacy,
        Err(ConfigError::UnsupportedSecretsMode { .. })
    ));
}

#[test]
fn inline_mode_has_no_env_file() {
    let owned = one(
        TenantStatus::Active,
        &[(ChannelKind::Telegram, true, json!({"botToken": "1:tg"}))],
    );
    let rendered = render_combined(&fixture::sources(&owned), &RenderOptions::default()).unwrap();
    assert!(rendered.env_file.is_none());
    assert!(
        !format!("{rendered:?}").contains("1:tg"),
        "Debug shows sizes only"
    );
}

#[test]
fn env_var_names_are_documented_form() {
    let t = tenant(0x0bad_cafe, "Acme", TenantStatus::Active);
    assert_eq!(
        env_var_name(ChannelKind::Slack, "appToken", &t.account_id),
        "SLACK_APP_TOKEN_TENANT_0BADCAFE"
    );
}

#[test]
fn env_file_reads_back_exactly_in_sh() {
    let t = tenant(9, "Acme", TenantStatus::Active);
    let token = "we'ird$HOME\"`x`#;|&*?~!{}[]()<>\\";
    let c = channel(
        &t,
        ChannelKind::Discord,
        true,
        None,
        json!({"token": token}),
    );
    let owned = vec![Owned {
        tenant: t,
        channels: vec![c],
    }];
    let rendered = render_combined(
        &fixture::sources(&owned),
        &opts(Dialect::Current, SecretsMode::Env),
    )
    .unwrap();
    let dir = std::env::temp_dir().join(format!("configgen-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("gateway.env");
    std::fs::write(&file, rendered.env_file.unwrap()).unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("set -a; . \"$1\"; printf %s \"$DISCORD_TOKEN_TENANT_00000009\"")
        .arg("sh")
        .arg(&file)
        .env_clear()
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), token);
}
