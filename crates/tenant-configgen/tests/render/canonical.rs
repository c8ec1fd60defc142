//! Canonical, deterministic output: input order, layouts, escaping, reused buffers.

use super::*;

#[test]
fn per_tenant_and_combined_agree_on_the_tenant() {
    let owned = fixture::varied();
    let sources = fixture::sources(&owned);
    let o = RenderOptions::default();
    let combined: Value =
        serde_json::from_str(&render_combined(&sources, &o).unwrap().json).unwrap();
    for s in &sources {
        let single: Value = serde_json::from_str(&render_tenant(s, &o).unwrap().json).unwrap();
        let agent = s.tenant.agent_id.as_str();
        if s.tenant.status == TenantStatus::Active {
            let entries = single["agents"]["entries"].as_object().unwrap();
            assert_eq!(entries.len(), 1);
            assert_eq!(entries[agent], combined["agents"]["entries"][agent]);
        } else {
            assert!(single["agents"].get("entries").is_none());
        }
        for b in single["bindings"].as_array().unwrap() {
            assert_eq!(b["agentId"], agent);
            assert!(combined["bindings"].as_array().unwrap().contains(b));
        }
    }
}

#[test]
fn output_is_independent_of_input_order() {
    let owned = fixture::varied();
    let mut sources = fixture::sources(&owned);
    let o = opts(Dialect::Current, SecretsMode::Env);
    let first = render_combined(&sources, &o).unwrap();
    // Deterministic shuffles: reversals and rotations of the tenants and of each one's channels.
    let mut reversed_channels: Vec<Vec<_>> = owned.iter().map(|o| o.channels.clone()).collect();
    for c in &mut reversed_channels {
        c.reverse();
    }
    for round in 0..sources.len() {
        sources.rotate_left(1);
        if round % 2 == 1 {
            sources.reverse();
        }
        let mixed: Vec<TenantSource<'_>> = sources
            .iter()
            .map(|s| {
                let i = owned
                    .iter()
                    .position(|o| o.tenant.id == s.tenant.id)
                    .unwrap();
                TenantSource {
                    tenant: s.tenant,
                    channels: if round % 3 == 0 {
                        &reversed_channels[i]
                    } else {
                        s.channels
                    },
                }
            })
            .collect();
        assert_eq!(render_combined(&mixed, &o).unwrap(), first, "round {round}");
    }
}

#[test]
fn names_are_escaped_for_json_and_for_env_substitution() {
    let name = "Ünï \"q\" \\ ${HOME} $${X} ${lower} 🦀 </script>";
    let t = tenant(7, name, TenantStatus::Active);
    let c = channel(
        &t,
        ChannelKind::Discord,
        true,
        Some("${DISCORD_TOKEN}"),
        json!({"token": "a${B}c"}),
    );
    let owned = vec![Owned {
        tenant: t,
        channels: vec![c],
    }];
    let v = doc(&owned, &RenderOptions::default());
    // The gateway turns `$${NAME}` back into `${NAME}` and leaves everything else alone.
    assert_eq!(
        v["agents"]["entries"]["agent-00000007"]["name"],
        "Ünï \"q\" \\ $${HOME} $$${X} ${lower} 🦀 </script>"
    );
    let acc = &v["channels"]["discord"]["accounts"]["tenant-00000007"];
    assert_eq!(acc["name"], "$${DISCORD_TOKEN}");
    assert_eq!(acc["token"], "a$${B}c");
}

#[test]
fn layouts_carry_the_same_document() {
    let owned = fixture::varied();
    let sources = fixture::sources(&owned);
    for secrets in [SecretsMode::Inline, SecretsMode::Env] {
        let compact = render_combined(&sources, &opts(Dialect::Current, secrets)).unwrap();
        let pretty = RenderOptions {
            layout: Layout::Pretty,
            ..opts(Dialect::Current, secrets)
        };
        let pretty = render_combined(&sources, &pretty).unwrap();
        let a: Value = serde_json::from_str(&compact.json).unwrap();
        let b: Value = serde_json::from_str(&pretty.json).unwrap();
        assert_eq!(a, b);
        assert!(!compact.json.trim_end().contains('\n'), "one line");
        assert!(compact.json.ends_with("}\n"));
        assert!(compact.json.len() < pretty.json.len() * 3 / 4);
        assert_eq!(compact.env_file, pretty.env_file);
    }
}

#[test]
fn rendering_into_a_used_buffer_gives_the_same_output() {
    let owned = fixture::varied();
    let sources = fixture::sources(&owned);
    let env = opts(Dialect::Current, SecretsMode::Env);
    let inline = opts(Dialect::Legacy, SecretsMode::Inline);
    let mut out = RenderedConfig::default();
    // Alternate modes and sizes, so each call starts from another call's leftovers.
    for (o, n) in [
        (&env, sources.len()),
        (&inline, 1),
        (&env, 2),
        (&inline, sources.len()),
    ] {
        render_combined_into(&sources[..n], o, &mut out).unwrap();
        assert_eq!(out, render_combined(&sources[..n], o).unwrap());
    }
    // After a failure the buffer is still usable.
    let bad = RenderOptions {
        workspace_root: "relative".to_owned(),
        ..env.clone()
    };
    assert!(render_combined_into(&sources, &bad, &mut out).is_err());
    render_combined_into(&sources, &env, &mut out).unwrap();
    assert_eq!(out, render_combined(&sources, &env).unwrap());
}
