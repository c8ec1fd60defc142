//! The fleet's scale rule, counted rather than timed (issue 25): a change to one tenant renders
//! that tenant again in its own gateway's document only; every other gateway's document finds
//! its tenants' stamps unchanged, renders nothing and keeps its tag. On both backends. The
//! figures at 100,000 tenants on 50 gateways are in `docs/benchmarks.md` (the `fleet_scale`
//! example).

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use moltbot_saas_tests::{TestApp, TestDb, spawn_app, test_keys};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tenant_configgen::RenderOptions;
use tenant_core::GatewayId;
use tenant_service::gateway_config::{ConfigCache, RefreshStats, Variant};
use tenant_store::{DatabaseUrl, PoolConfig, config_revision};

fn variant(gateway: GatewayId) -> Variant {
    let opts = RenderOptions::default();
    Variant {
        gateway,
        dialect: opts.dialect,
        secrets: opts.secrets,
        per_tenant: false,
    }
}

/// Brings each gateway's document in `cache` to the store's revision: (its tag, what the refresh
/// did) per gateway.
async fn refresh(
    db: &TestDb,
    database: &tenant_store::Database,
    cache: &ConfigCache,
    gateways: &[GatewayId],
) -> HashMap<GatewayId, (String, RefreshStats)> {
    let revision = config_revision::current(&mut db.connect()).unwrap();
    let mut out = HashMap::new();
    for g in gateways {
        let doc = cache
            .get(
                database,
                &RenderOptions::default(),
                &test_keys(),
                variant(*g),
                revision,
            )
            .await
            .unwrap();
        let stats = cache.last_refresh(variant(*g)).await.unwrap();
        assert!(stats.revision >= revision, "{stats:?}");
        out.insert(*g, (doc.etag.clone(), stats));
    }
    out
}

/// The `ETag` of each gateway's `GET /config`, with its own token.
async fn served_tags(app: &TestApp, tokens: &[(GatewayId, String)]) -> HashMap<GatewayId, String> {
    let mut tags = HashMap::new();
    for (id, token) in tokens {
        let r = app
            .request_as(Some(token), Method::GET, "/config", None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        tags.insert(*id, r.headers["etag"].to_str().unwrap().to_owned());
    }
    tags
}

#[tokio::test]
async fn a_change_to_one_tenant_renders_only_its_gateways_document_again() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    crate::fleet::close_default(&app).await;
    let mut tokens = Vec::new();
    for name in ["g1", "g2", "g3"] {
        let r = app
            .post(
                "/gateways",
                &json!({"name": name, "kind": "shared", "capacity": 5}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        tokens.push((
            r.body["id"].as_str().unwrap().parse::<GatewayId>().unwrap(),
            r.body["token"].as_str().unwrap().to_owned(),
        ));
    }
    let gateways: Vec<GatewayId> = tokens.iter().map(|(id, _)| *id).collect();
    // Six tenants with a Telegram channel: two on each gateway.
    let mut placed: HashMap<GatewayId, Vec<String>> = HashMap::new();
    for i in 0..6 {
        let t = app.create_tenant(&format!("Spread {i}")).await;
        let id = t["id"].as_str().unwrap().to_owned();
        let r = app
            .post(
                &format!("/tenants/{id}/channels"),
                &json!({"channel": "telegram", "credentials": {"botToken": format!("{}:AAspread-{i}", 700 + i)}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let p = app.get(&format!("/tenants/{id}/placement")).await;
        let on: GatewayId = p.body["gatewayId"].as_str().unwrap().parse().unwrap();
        placed.entry(on).or_default().push(id);
    }
    for g in &gateways {
        assert_eq!(placed.get(g).map_or(0, Vec::len), 2, "{placed:?}");
    }

    // A cache of this test's own over the same database, so its counts are this test's alone.
    let database = tenant_service::db::open(
        &DatabaseUrl::parse(db.url()).unwrap(),
        &PoolConfig::default(),
        false,
    )
    .unwrap();
    let cache = ConfigCache::default();
    let mut all = vec![GatewayId::DEFAULT];
    all.extend(&gateways);
    let first = refresh(&db, &database, &cache, &all).await;
    for g in &gateways {
        assert_eq!(first[g].1.rendered, 2, "{:?}", first[g]);
    }
    assert_eq!(first[&GatewayId::DEFAULT].1.rendered, 0);
    let tags_before = served_tags(&app, &tokens).await;

    // One tenant renamed.
    let changed_on = gateways[1];
    let renamed = &placed[&changed_on][0];
    let r = app
        .patch(
            &format!("/tenants/{renamed}"),
            &json!({"name": "Renamed Spread"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let second = refresh(&db, &database, &cache, &all).await;
    let rendered: HashMap<GatewayId, usize> =
        second.iter().map(|(g, (_, s))| (*g, s.rendered)).collect();
    let expected: HashMap<GatewayId, usize> = all
        .iter()
        .map(|g| (*g, usize::from(*g == changed_on)))
        .collect();
    assert_eq!(rendered, expected, "tenants rendered again, by gateway");
    for g in &all {
        assert_eq!(second[g].1.removed, 0, "{:?}", second[g]);
        assert!(second[g].1.revision > first[g].1.revision);
        let same_tag = second[g].0 == first[g].0;
        assert_eq!(same_tag, *g != changed_on, "the tag of {g}'s document");
    }
    // What the gateways read over HTTP agrees: only the changed tenant's gateway sees a new tag.
    let tags_after = served_tags(&app, &tokens).await;
    for g in &gateways {
        assert_eq!(
            tags_after[g] == tags_before[g],
            *g != changed_on,
            "the served tag of {g}"
        );
    }

    // One tenant's channel changed, then another's deleted (a tenant's stamp is its channels'
    // too, and each gateway lists only its own tenants' channels): only their gateway renders
    // again, and its document follows.
    let channel_on = gateways[2];
    let [first_there, second_there] = [&placed[&channel_on][0], &placed[&channel_on][1]];
    let r = app
        .patch(
            &format!("/tenants/{first_there}/channels/telegram"),
            &json!({"enabled": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .request(
            Method::DELETE,
            &format!("/tenants/{second_there}/channels/telegram"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let third = refresh(&db, &database, &cache, &all).await;
    for g in &all {
        let expected = if *g == channel_on { 2 } else { 0 };
        assert_eq!(third[g].1.rendered, expected, "{g}: {:?}", third[g]);
        assert_eq!(
            third[g].0 == second[g].0,
            *g != channel_on,
            "the tag of {g}"
        );
    }
    let token = &tokens.iter().find(|(id, _)| *id == channel_on).unwrap().1;
    let doc = app
        .request_as(Some(token), Method::GET, "/config", None)
        .await;
    assert_eq!(doc.status, StatusCode::OK, "{}", doc.text);
    let accounts = doc.body["channels"]["telegram"]["accounts"]
        .as_object()
        .map_or(0, serde_json::Map::len);
    assert_eq!(
        accounts, 0,
        "neither channel is served any more: {}",
        doc.text
    );
}
