//! Group commit of the write paths through the HTTP API: concurrent ingests and creates are
//! written in shared batches, yet each request is answered for itself, only after its writes
//! committed, and one request's failure never fails the others — on both backends.
//!
//! The writers hold each batch open for a while (`linger`) so that concurrent requests really
//! share batches; nothing here depends on how they were grouped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use moltbot_saas_tests::{TestApp, TestDb, spawn_app_with, test_settings};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenant_store::schema::{audit_log, events, tenants};
use tokio::task::JoinSet;

/// A server whose writers wait for company, with the dispatcher off (deliveries stay queued).
async fn batching_app(db: &TestDb) -> TestApp {
    let mut settings = test_settings(db);
    settings.webhooks.dispatcher = false;
    settings.webhooks.allowed_networks = vec!["127.0.0.1/32".parse().unwrap()];
    settings.writes.linger = Duration::from_millis(20);
    settings.writes.max_wait = Duration::from_millis(200);
    spawn_app_with(settings).await
}

/// Sends every `(path, body)` at once with `token`; answers in the same order.
async fn all_at_once(
    app: &TestApp,
    token: &str,
    requests: Vec<(&str, Value)>,
) -> Vec<(u16, Value)> {
    let mut set = JoinSet::new();
    for (k, (path, body)) in requests.into_iter().enumerate() {
        let req = app
            .client
            .request(Method::POST, format!("{}{path}", app.address))
            .bearer_auth(token)
            .json(&body);
        set.spawn(async move {
            let resp = req.send().await.expect("request failed");
            let status = resp.status().as_u16();
            (k, status, resp.json::<Value>().await.unwrap_or(Value::Null))
        });
    }
    let mut out: Vec<(usize, u16, Value)> = set.join_all().await;
    out.sort_by_key(|(k, _, _)| *k);
    out.into_iter().map(|(_, s, b)| (s, b)).collect()
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// The rows of a table.
fn count(db: &TestDb, table: &str) -> i64 {
    diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
        .get_result::<Count>(&mut db.connect())
        .unwrap()
        .n
}

fn event(id: &str, tenant: &Value) -> (&'static str, Value) {
    (
        "/events",
        json!({"id": id, "type": "message.received", "accountId": tenant["accountId"],
               "data": {"text": id}}),
    )
}

#[tokio::test]
async fn concurrent_events_are_stored_once_each_with_their_deliveries() {
    let db = TestDb::new();
    let app = batching_app(&db).await;
    let tenant = app.create_tenant("Batch Hooks").await;
    let tid = tenant["id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/tenants/{tid}/webhooks"),
            &json!({"url": "http://127.0.0.1:9/hook"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // Another endpoint that does not want this type gets nothing.
    let r = app
        .post(
            &format!("/tenants/{tid}/webhooks"),
            &json!({"url": "http://127.0.0.1:9/other", "eventTypes": ["message.sent"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    // 40 distinct events, and 10 of them sent a second time in the same burst.
    let mut requests: Vec<_> = (0..40)
        .map(|i| event(&format!("burst-{i}"), &tenant))
        .collect();
    requests.extend((0..10).map(|i| event(&format!("burst-{i}"), &tenant)));
    let answers = all_at_once(&app, &app.gateway_token, requests).await;
    for (status, body) in &answers {
        assert_eq!(*status, 202, "{body}");
        assert_eq!(body["tenantId"], tenant["id"]);
    }
    // Per id: accepted once (one delivery), the other copy a duplicate naming the same event.
    for i in 0..10 {
        let (a, b) = (&answers[i].1, &answers[40 + i].1);
        assert_eq!(a["eventId"], b["eventId"], "burst-{i}");
        let mut dup = [a["duplicate"].as_bool(), b["duplicate"].as_bool()];
        dup.sort();
        assert_eq!(dup, [Some(false), Some(true)], "burst-{i}: {a} {b}");
    }
    let fresh: u64 = answers
        .iter()
        .filter(|(_, b)| b["duplicate"] == false)
        .map(|(_, b)| b["deliveries"].as_u64().unwrap())
        .sum();
    assert_eq!(fresh, 40);
    assert_eq!(count(&db, "events"), 40);
    assert_eq!(count(&db, "webhook_deliveries"), 40);
}

#[tokio::test]
async fn a_failing_or_unresolved_event_fails_alone_and_is_never_acknowledged() {
    let db = TestDb::new();
    let app = batching_app(&db).await;
    let tenant = app.create_tenant("Poison Hooks").await;
    // The database refuses one event; on PostgreSQL only at commit (a deferred trigger), so the
    // whole batch statement fails after it ran.
    let mut conn = db.connect();
    match db.backend() {
        "postgres" => conn.batch_execute(
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               IF NEW.source_id = 'poison' THEN RAISE EXCEPTION 'poisoned'; END IF; \
               RETURN NULL; END $$; \
             CREATE CONSTRAINT TRIGGER poison AFTER INSERT ON events \
               DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION poison();",
        ),
        _ => conn.batch_execute(
            "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.source_id = 'poison' \
             BEGIN SELECT RAISE(ABORT, 'poisoned'); END;",
        ),
    }
    .unwrap();

    let mut requests: Vec<_> = (0..20)
        .map(|i| event(&format!("good-{i}"), &tenant))
        .collect();
    requests.push(event("poison", &tenant));
    requests.push((
        "/events",
        json!({"id": "nobody", "type": "message.received", "accountId": "tenant-00000000"}),
    ));
    let answers = all_at_once(&app, &app.gateway_token, requests).await;
    for (status, body) in &answers[..20] {
        assert_eq!(*status, 202, "{body}");
        assert_eq!(body["duplicate"], false);
    }
    let (status, body) = &answers[20];
    assert_eq!(*status, 500, "{body}");
    assert_eq!(body["error"]["code"], "internal", "{body}");
    let (status, body) = &answers[21];
    assert_eq!(*status, 422, "{body}");
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "accountId");

    let stored: Vec<String> = events::table
        .select(events::source_id)
        .load(&mut db.connect())
        .unwrap();
    assert_eq!(stored.len(), 20);
    assert!(stored.iter().all(|s| s.starts_with("good-")), "{stored:?}");
}

#[tokio::test]
async fn a_deleted_tenant_is_not_served_from_the_cache_and_its_account_id_can_move_on() {
    let db = TestDb::new();
    let app = batching_app(&db).await;
    let gone = app.create_tenant("Gone Soon").await;
    let stays = app.create_tenant("Stays").await;
    // Cache both tenants' account ids.
    let answers = all_at_once(
        &app,
        &app.gateway_token,
        vec![event("warm-1", &gone), event("warm-2", &stays)],
    )
    .await;
    assert!(answers.iter().all(|(s, _)| *s == 202), "{answers:?}");
    // Deleted behind the server's back (as by another replica).
    let gone_id = gone["id"].as_str().unwrap();
    diesel::delete(tenants::table.find(gone_id))
        .execute(&mut db.connect())
        .unwrap();
    let answers = all_at_once(
        &app,
        &app.gateway_token,
        vec![event("after-1", &gone), event("after-2", &stays)],
    )
    .await;
    assert_eq!(answers[0].0, 422, "{}", answers[0].1);
    assert_eq!(
        answers[0].1["error"]["details"]["fields"][0]["field"],
        "accountId"
    );
    assert_eq!(answers[1].0, 202, "{}", answers[1].1);

    // A new tenant holding the old account id (ids are random, so write it by hand) gets the
    // events of that account: the deleted tenant's entry was forgotten.
    let heir = uuid::Uuid::new_v4().to_string();
    let now = chrono::Utc::now().naive_utc();
    diesel::insert_into(tenants::table)
        .values((
            tenants::id.eq(&heir),
            tenants::name.eq("Heir"),
            tenants::slug.eq("heir"),
            tenants::account_id.eq(gone["accountId"].as_str().unwrap()),
            tenants::agent_id.eq("agent-0e1e0e1e"),
            tenants::plan.eq("free"),
            tenants::status.eq("active"),
            tenants::created_at.eq(now),
            tenants::updated_at.eq(now),
        ))
        .execute(&mut db.connect())
        .unwrap();
    let answers = all_at_once(&app, &app.gateway_token, vec![event("heir-1", &gone)]).await;
    assert_eq!(answers[0].0, 202, "{}", answers[0].1);
    assert_eq!(answers[0].1["tenantId"], heir.as_str());
}

#[tokio::test]
async fn a_deleted_tenants_events_are_refused_like_an_unknown_tenants() {
    let db = TestDb::new();
    let app = batching_app(&db).await;
    let gone = app.create_tenant("Deleted Soon").await;
    let stays = app.create_tenant("Stays On").await;
    let gone_id = gone["id"].as_str().unwrap();
    // Its account id cached, as a busy gateway's tenant's would be.
    let answers = all_at_once(&app, &app.gateway_token, vec![event("warm-1", &gone)]).await;
    assert_eq!(answers[0].0, 202, "{}", answers[0].1);
    // Deleted through the API: the row stays (marked) until the background purge.
    let path = format!("/tenants/{gone_id}");
    assert_eq!(app.delete(&path).await.status, StatusCode::NO_CONTENT);
    let message = |by: &str, value: &Value| {
        (
            "/webhooks/message",
            json!({by: value, "channel": "telegram", "from": "someone", "message": "hello"}),
        )
    };
    let answers = all_at_once(
        &app,
        &app.gateway_token,
        vec![
            event("after-1", &gone),
            message("tenantId", &gone["id"]),
            message("accountId", &gone["accountId"]),
            event("after-2", &stays),
        ],
    )
    .await;
    for (k, field) in [(0, "accountId"), (1, "tenantId"), (2, "accountId")] {
        let (status, body) = &answers[k];
        assert_eq!(*status, 422, "{body}");
        assert_eq!(body["error"]["code"], "validation_failed", "{body}");
        assert_eq!(
            body["error"]["details"]["fields"][0]["field"], field,
            "{body}"
        );
    }
    assert_eq!(answers[3].0, 202, "{}", answers[3].1);
    // Nothing was stored for it after the deletion.
    let stored: Vec<String> = events::table
        .filter(events::tenant_id.eq(gone_id))
        .select(events::source_id)
        .load(&mut db.connect())
        .unwrap();
    assert_eq!(stored, ["warm-1"]);
}

#[tokio::test]
async fn endpoint_changes_made_through_another_replica_apply_to_the_next_event() {
    let db = TestDb::new();
    let one = batching_app(&db).await;
    let two = batching_app(&db).await;
    let tenant = one.create_tenant("Two Replicas").await;
    let tid = tenant["id"].as_str().unwrap();
    let send = |app: &TestApp, id: &str| {
        let body = event(id, &tenant).1;
        let (client, url, token) = (
            app.client.clone(),
            format!("{}/events", app.address),
            app.gateway_token.clone(),
        );
        async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
            r.json::<Value>().await.unwrap()["deliveries"]
                .as_u64()
                .unwrap()
        }
    };
    assert_eq!(send(&one, "r-1").await, 0);
    let r = two
        .post(
            &format!("/tenants/{tid}/webhooks"),
            &json!({"url": "http://127.0.0.1:9/hook"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let wid = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(send(&one, "r-2").await, 1);
    let r = two
        .patch(
            &format!("/tenants/{tid}/webhooks/{wid}"),
            &json!({"enabled": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(send(&one, "r-3").await, 0);
}

#[tokio::test]
async fn concurrent_creates_are_each_whole_and_one_failure_fails_alone() {
    let db = TestDb::new();
    let app = batching_app(&db).await;
    let mut conn = db.connect();
    // The database refuses the API key of one tenant: its create must leave nothing behind.
    match db.backend() {
        "postgres" => conn.batch_execute(
            "CREATE FUNCTION poison_key() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               IF (SELECT name FROM tenants WHERE id = NEW.tenant_id) = 'Poison Corp' THEN \
                 RAISE EXCEPTION 'poisoned'; END IF; RETURN NEW; END $$; \
             CREATE TRIGGER poison_key BEFORE INSERT ON api_keys \
               FOR EACH ROW EXECUTE FUNCTION poison_key();",
        ),
        _ => conn.batch_execute(
            "CREATE TRIGGER poison_key BEFORE INSERT ON api_keys \
             WHEN (SELECT name FROM tenants WHERE id = NEW.tenant_id) = 'Poison Corp' \
             BEGIN SELECT RAISE(ABORT, 'poisoned'); END;",
        ),
    }
    .unwrap();
    let before = tenant_store::config_revision::current(&mut conn).unwrap();

    // 24 distinct names, 4 times the same name (derived slugs disambiguated), 3 times the same
    // chosen slug (one wins, two 409), and the poisoned one.
    let mut requests: Vec<_> = (0..24)
        .map(|i| ("/tenants", json!({"name": format!("Batch Corp {i}")})))
        .collect();
    requests.extend((0..4).map(|_| ("/tenants", json!({"name": "Same Name"}))));
    requests.extend((0..3).map(|i| {
        (
            "/tenants",
            json!({"name": format!("Chooser {i}"), "slug": "chosen"}),
        )
    }));
    requests.push(("/tenants", json!({"name": "Poison Corp"})));
    let answers = all_at_once(&app, &app.operator_token, requests).await;

    let created: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(created.len(), 24 + 4 + 1, "{answers:?}");
    assert_eq!(answers.iter().filter(|(s, _)| *s == 409).count(), 2);
    let (status, body) = answers.last().unwrap();
    assert_eq!(*status, 500, "{body}");
    let mut slugs: Vec<&str> = created
        .iter()
        .map(|b| b["slug"].as_str().unwrap())
        .collect();
    slugs.sort();
    slugs.dedup();
    assert_eq!(slugs.len(), created.len(), "slugs are unique");
    for b in &created {
        assert!(b["apiKey"].as_str().unwrap().starts_with("msk_"), "{b}");
    }
    // Each created tenant works with its own key.
    let key = created[0]["apiKey"].as_str().unwrap();
    let r = app
        .request_as(
            Some(key),
            Method::GET,
            &format!("/tenants/{}", created[0]["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // Exactly the rows of the successful creates, and none of the failed one.
    let n = i64::try_from(created.len()).unwrap();
    assert_eq!(count(&db, "tenants"), n);
    assert_eq!(count(&db, "api_keys"), n);
    let actions: Vec<String> = audit_log::table
        .select(audit_log::action)
        .load(&mut db.connect())
        .unwrap();
    assert_eq!(
        actions.iter().filter(|a| *a == "tenant.created").count() as i64,
        n
    );
    assert_eq!(
        actions.iter().filter(|a| *a == "key.created").count() as i64,
        n
    );
    let poisoned: i64 = tenants::table
        .filter(tenants::name.eq("Poison Corp"))
        .count()
        .get_result(&mut db.connect())
        .unwrap();
    assert_eq!(poisoned, 0);
    let after = tenant_store::config_revision::current(&mut db.connect()).unwrap();
    assert!(
        after > before,
        "the config revision moved: {before} → {after}"
    );
}

/// Sends every `(method, path, body)` at once with `token`; answers in the same order.
async fn mixed_at_once(
    app: &TestApp,
    requests: Vec<(Method, String, Option<Value>)>,
) -> Vec<(u16, Value)> {
    let mut set = JoinSet::new();
    for (k, (method, path, body)) in requests.into_iter().enumerate() {
        let mut req = app
            .client
            .request(method, format!("{}{path}", app.address))
            .bearer_auth(&app.operator_token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        set.spawn(async move {
            let resp = req.send().await.expect("request failed");
            let status = resp.status().as_u16();
            (k, status, resp.json::<Value>().await.unwrap_or(Value::Null))
        });
    }
    let mut out: Vec<(usize, u16, Value)> = set.join_all().await;
    out.sort_by_key(|(k, _, _)| *k);
    out.into_iter().map(|(_, s, b)| (s, b)).collect()
}

#[tokio::test]
async fn concurrent_channel_writes_are_each_answered_as_if_alone() {
    let db = TestDb::new();
    let app = batching_app(&db).await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let t = app.create_tenant(&format!("Channel Batch {i}")).await;
        ids.push(t["id"].as_str().unwrap().to_owned());
    }
    // Tenant 4 may have one channel; tenant 5 has a Discord channel, tenant 6 a Telegram one.
    tenant_store::limits::save(
        &mut db.connect(),
        &ids[4].parse().unwrap(),
        &tenant_store::limits::LimitOverrides {
            max_channels: Some(1),
            ..Default::default()
        },
        tenant_core::now(),
    )
    .unwrap();
    let discord = json!({"channel": "discord", "credentials": {"token": "old.discord.token"}});
    let r = app
        .post(&format!("/tenants/{}/channels", ids[5]), &discord)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let telegram = |n: u32| json!({"channel": "telegram", "credentials": {"botToken": format!("{}:AAbatch", 100 + n)}});
    let r = app
        .post(&format!("/tenants/{}/channels", ids[6]), &telegram(6))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let mut conn = db.connect();
    let before = tenant_store::config_revision::current(&mut conn).unwrap();
    let audit_before: i64 = audit_log::table.count().get_result(&mut conn).unwrap();

    let post =
        |id: &str, body: Value| (Method::POST, format!("/tenants/{id}/channels"), Some(body));
    let mut requests: Vec<(Method, String, Option<Value>)> = (0..4)
        .map(|i| post(&ids[i], telegram(u32::try_from(i).unwrap())))
        .collect();
    // 0..4: created. 4, 5: one more Telegram channel for tenant 0 each: 409.
    requests.push(post(&ids[0], telegram(10)));
    requests.push(post(&ids[0], telegram(11)));
    // 6, 7: tenant 4 has room for one of them.
    requests.push(post(&ids[4], telegram(4)));
    requests.push(post(&ids[4], discord.clone()));
    // 8: no such tenant.
    requests.push(post(&uuid::Uuid::new_v4().to_string(), telegram(12)));
    // 9: a credential rotation; 10: of a channel that does not exist; 11: a delete of one that
    // does not exist; 12: a delete.
    requests.push((
        Method::PATCH,
        format!("/tenants/{}/channels/discord", ids[5]),
        Some(json!({"credentials": {"token": "new.discord.token.0042"}})),
    ));
    requests.push((
        Method::PATCH,
        format!("/tenants/{}/channels/telegram", ids[5]),
        Some(json!({"enabled": false})),
    ));
    requests.push((
        Method::DELETE,
        format!("/tenants/{}/channels/slack", ids[5]),
        None,
    ));
    requests.push((
        Method::DELETE,
        format!("/tenants/{}/channels/telegram", ids[6]),
        None,
    ));
    let answers = mixed_at_once(&app, requests).await;
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();

    // Tenant 0's three Telegram creates: whichever the batch met first is created.
    let mut first = [statuses[0], statuses[4], statuses[5]];
    first.sort_unstable();
    assert_eq!(first, [201, 409, 409], "{answers:?}");
    assert_eq!(&statuses[1..4], &[201, 201, 201], "{answers:?}");
    for (i, (status, body)) in answers[..6].iter().enumerate() {
        if *status == 201 {
            let owner = if i < 4 { i } else { 0 };
            assert_eq!(body["tenantId"], ids[owner].as_str());
            assert_eq!(body["state"], "ready", "{body}");
        }
    }
    let mut limited = statuses[6..8].to_vec();
    limited.sort_unstable();
    assert_eq!(limited[0], 201, "{answers:?}");
    assert_eq!(
        answers[6..8]
            .iter()
            .filter(|(_, b)| b["error"]["code"] == "plan_limit_reached")
            .count(),
        1,
        "{answers:?}"
    );
    assert_eq!(statuses[8], 404, "{answers:?}");
    assert_eq!(statuses[9], 200, "{answers:?}");
    assert_eq!(
        answers[9].1["credentials"]["token"]["last4"], "0042",
        "{answers:?}"
    );
    assert_eq!(&statuses[10..], &[404, 404, 204], "{answers:?}");

    // The rotated token is what the store holds, and the deleted channel is gone.
    let r = app
        .get(&format!("/tenants/{}/channels/discord", ids[5]))
        .await;
    assert_eq!(
        r.body["credentials"]["token"]["last4"], "0042",
        "{:?}",
        r.body
    );
    let r = app
        .get(&format!("/tenants/{}/channels/telegram", ids[6]))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // One audit row per change made, none for the refused ones; the revision moved.
    let mut conn = db.connect();
    let actions: Vec<String> = audit_log::table
        .select(audit_log::action)
        .order(audit_log::created_at.asc())
        .load(&mut conn)
        .unwrap();
    let new: Vec<&String> = actions
        .iter()
        .skip(usize::try_from(audit_before).unwrap())
        .collect();
    assert_eq!(
        new.iter().filter(|a| **a == "channel.created").count(),
        5,
        "{new:?}"
    );
    assert_eq!(
        new.iter().filter(|a| **a == "channel.updated").count(),
        1,
        "{new:?}"
    );
    assert_eq!(
        new.iter().filter(|a| **a == "channel.deleted").count(),
        1,
        "{new:?}"
    );
    assert_eq!(new.len(), 7, "{new:?}");
    assert_eq!(count(&db, "channels"), 2 + 5 - 1);
    let after = tenant_store::config_revision::current(&mut conn).unwrap();
    assert!(
        after >= before + 7,
        "the config revision moved: {before} → {after}"
    );
}

/// The new audit rows of `action` since `before` rows.
fn new_actions(db: &TestDb, before: i64, action: &str) -> usize {
    let actions: Vec<String> = audit_log::table
        .select(audit_log::action)
        .order(audit_log::created_at.asc())
        .load(&mut db.connect())
        .unwrap();
    actions
        .iter()
        .skip(usize::try_from(before).unwrap())
        .filter(|a| *a == action)
        .count()
}

/// `POST path` with `Idempotency-Key: key`.
async fn post_keyed(app: &TestApp, path: &str, key: &str, body: &Value) -> (u16, String, Value) {
    let r = app
        .request_with_header(
            &app.operator_token,
            Method::POST,
            path,
            ("Idempotency-Key", key),
            Some(body),
        )
        .await;
    (r.status.as_u16(), r.text, r.body)
}

#[tokio::test]
async fn concurrent_endpoint_creates_never_pass_the_plan_limit_and_each_is_answered_once() {
    let db = TestDb::new();
    let app = batching_app(&db).await;
    let a = app.create_tenant("Endpoint Batch A").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = app.create_tenant("Endpoint Batch B").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A may have 4 endpoints; B 3, one of them already taken.
    for (tenant, limit) in [(&a, 4), (&b, 3)] {
        tenant_store::limits::save(
            &mut db.connect(),
            &tenant.parse().unwrap(),
            &tenant_store::limits::LimitOverrides {
                max_webhook_endpoints: Some(limit),
                ..Default::default()
            },
            tenant_core::now(),
        )
        .unwrap();
    }
    let hook = |n: usize| {
        json!({"url": format!("https://hooks.example.com/batch/{n}"),
               "eventTypes": ["message.received"], "enabled": false})
    };
    let r = app.post(&format!("/tenants/{b}/webhooks"), &hook(99)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let b0 = r.body["id"].as_str().unwrap().to_owned();
    let audit_before = count(&db, "audit_log");

    let post = |id: &str, n: usize| {
        (
            Method::POST,
            format!("/tenants/{id}/webhooks"),
            Some(hook(n)),
        )
    };
    // 0..10: A (room for 4); 10..15: B (room for 2); 15: no such tenant.
    let mut requests: Vec<(Method, String, Option<Value>)> = (0..10).map(|n| post(&a, n)).collect();
    requests.extend((10..15).map(|n| post(&b, n)));
    requests.push(post(&uuid::Uuid::new_v4().to_string(), 15));
    // 16, 17: two changes of one endpoint (the second waits for the first); 18: no such one.
    let patch = |id: &str, wid: &str, body: Value| {
        (
            Method::PATCH,
            format!("/tenants/{id}/webhooks/{wid}"),
            Some(body),
        )
    };
    requests.push(patch(&b, &b0, json!({"description": "changed"})));
    requests.push(patch(&b, &b0, json!({"enabled": true})));
    requests.push(patch(
        &a,
        &uuid::Uuid::new_v4().to_string(),
        json!({"enabled": true}),
    ));
    let answers = mixed_at_once(&app, requests).await;

    let created = |range: std::ops::Range<usize>| {
        answers[range]
            .iter()
            .filter(|(s, _)| *s == 201)
            .map(|(_, body)| body.clone())
            .collect::<Vec<Value>>()
    };
    let limited = |range: std::ops::Range<usize>| {
        answers[range]
            .iter()
            .filter(|(s, b)| *s == 403 && b["error"]["code"] == "plan_limit_reached")
            .count()
    };
    let (made_a, made_b) = (created(0..10), created(10..15));
    assert_eq!((made_a.len(), limited(0..10)), (4, 6), "{answers:?}");
    assert_eq!((made_b.len(), limited(10..15)), (2, 3), "{answers:?}");
    assert_eq!(answers[15].0, 404, "{answers:?}");
    assert_eq!(answers[16].0, 200, "{answers:?}");
    assert_eq!(answers[17].0, 200, "{answers:?}");
    assert_eq!(answers[18].0, 404, "{answers:?}");
    let mut ids = std::collections::HashSet::new();
    for (tenant, body) in made_a
        .iter()
        .map(|b| (&a, b))
        .chain(made_b.iter().map(|body| (&b, body)))
    {
        assert_eq!(body["tenantId"], tenant.as_str(), "{body}");
        assert_eq!(body["eventTypes"], json!(["message.received"]), "{body}");
        assert_eq!(body["enabled"], false, "{body}");
        assert!(
            body["secret"].as_str().unwrap().starts_with("whsec_"),
            "{body}"
        );
        assert!(
            ids.insert(body["id"].as_str().unwrap().to_owned()),
            "{body}"
        );
    }

    // The store holds exactly what was answered: the limit was never passed.
    for (tenant, made, total) in [(&a, &made_a, 4), (&b, &made_b, 3)] {
        let r = app.get(&format!("/tenants/{tenant}/webhooks")).await;
        let listed = r.body["webhooks"].as_array().unwrap();
        assert_eq!(listed.len(), total, "{:?}", r.body);
        for body in made {
            assert!(listed.iter().any(|e| e["id"] == body["id"]), "{body}");
        }
    }
    let r = app.get(&format!("/tenants/{b}/webhooks/{b0}")).await;
    assert_eq!(r.body["description"], "changed", "{:?}", r.body);
    assert_eq!(r.body["enabled"], true, "{:?}", r.body);

    // One audit row per change made, none for the refused ones.
    assert_eq!(new_actions(&db, audit_before, "webhook.created"), 6);
    assert_eq!(new_actions(&db, audit_before, "webhook.updated"), 2);
    assert_eq!(count(&db, "audit_log"), audit_before + 8);

    // A keyed create is written with its key through the batch: its retry is the same answer
    // (secret included), and nothing is created twice.
    let c = app.create_tenant("Endpoint Batch C").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/tenants/{c}/webhooks");
    let first = post_keyed(&app, &path, "endpoint-once", &hook(20)).await;
    let again = post_keyed(&app, &path, "endpoint-once", &hook(20)).await;
    assert_eq!(first.0, 201, "{}", first.1);
    assert_eq!((again.0, &again.1), (201, &first.1));
    let r = app.get(&path).await;
    assert_eq!(r.body["webhooks"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn concurrent_api_key_issues_are_each_answered_once_and_audited_once() {
    let db = TestDb::new();
    let app = batching_app(&db).await;
    let tenants: Vec<String> = [
        app.create_tenant("Key Batch A").await,
        app.create_tenant("Key Batch B").await,
    ]
    .iter()
    .map(|t| t["id"].as_str().unwrap().to_owned())
    .collect();
    let keys_before = count(&db, "api_keys");
    let audit_before = count(&db, "audit_log");

    // 0..24: keys for A and B in turn, every third an admin; 24, 25: no such tenant.
    let mut requests: Vec<(Method, String, Option<Value>)> = (0..24)
        .map(|i| {
            let mut body = json!({"name": format!("batch key {i}")});
            if i % 3 == 0 {
                body["role"] = json!("admin");
            }
            (
                Method::POST,
                format!("/tenants/{}/api-keys", tenants[i % 2]),
                Some(body),
            )
        })
        .collect();
    for _ in 0..2 {
        requests.push((
            Method::POST,
            format!("/tenants/{}/api-keys", uuid::Uuid::new_v4()),
            Some(json!({"name": "nobody's"})),
        ));
    }
    let answers = mixed_at_once(&app, requests).await;
    let mut seen = std::collections::HashSet::new();
    for (i, (status, body)) in answers[..24].iter().enumerate() {
        assert_eq!(*status, 201, "{answers:?}");
        assert_eq!(body["name"], format!("batch key {i}"));
        assert_eq!(body["role"], if i % 3 == 0 { "admin" } else { "member" });
        let key = body["apiKey"].as_str().unwrap().to_owned();
        assert!(seen.insert(key.clone()), "{body}");
        assert!(
            seen.insert(body["id"].as_str().unwrap().to_owned()),
            "{body}"
        );
        // Each key works, for its own tenant.
        let me = app.request_as(Some(&key), Method::GET, "/me", None).await;
        assert_eq!(me.status, StatusCode::OK, "{}", me.text);
        assert_eq!(me.body["tenantId"], tenants[i % 2].as_str());
        assert_eq!(me.body["apiKey"]["name"], format!("batch key {i}"));
    }
    assert_eq!(answers[24].0, 404, "{answers:?}");
    assert_eq!(answers[25].0, 404, "{answers:?}");
    assert_eq!(count(&db, "api_keys"), keys_before + 24);
    assert_eq!(new_actions(&db, audit_before, "key.created"), 24);
    assert_eq!(count(&db, "audit_log"), audit_before + 24);

    // A keyed issue is written with its key: its retry is the same answer, key included.
    let path = format!("/tenants/{}/api-keys", tenants[0]);
    let first = post_keyed(&app, &path, "key-once", &json!({"name": "once"})).await;
    let again = post_keyed(&app, &path, "key-once", &json!({"name": "once"})).await;
    assert_eq!(first.0, 201, "{}", first.1);
    assert_eq!((again.0, &again.1), (201, &first.1));
    assert_eq!(count(&db, "api_keys"), keys_before + 25);
}
