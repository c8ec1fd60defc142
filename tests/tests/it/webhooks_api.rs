//! Events ingest (attribution, idempotency, sessions), the endpoints API's validation, and the
//! SSRF guard at save time and at every delivery.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chrono::Utc;
use moltbot_saas_tests::{TestDb, WebhookReceiver};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tenant_core::Secret;
use tenant_store::webhooks::{self, NewEndpoint};

use crate::webhooks_support::{app, config, dispatcher, send_event, tenant_with_endpoint};

#[tokio::test]
async fn events_are_attributed_accepted_once_and_sessions_recorded() {
    let db = TestDb::new();
    let app = app(&db).await;
    let tenant = app.create_tenant("Events Co").await;
    let (account, agent) = (
        tenant["accountId"].as_str().unwrap(),
        tenant["agentId"].as_str().unwrap(),
    );
    let key = format!("agent:{agent}:telegram:{account}:direct:4242");
    let event = json!({"id": "e-1", "type": "session.started", "sessionKey": key});
    let gw = Some(app.gateway_token.as_str());
    let r = app
        .request_as(gw, Method::POST, "/events", Some(&event))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.body["tenantId"], tenant["id"]);
    assert_eq!(r.body["duplicate"], false);
    let again = app
        .request_as(gw, Method::POST, "/events", Some(&event))
        .await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.body["duplicate"], true);
    assert_eq!(again.body["eventId"], r.body["eventId"]);

    // The prototype's body still works, by tenant id.
    let msg =
        json!({"tenantId": tenant["id"], "channel": "telegram", "from": "u1", "message": "hi"});
    let r = app
        .request_as(gw, Method::POST, "/webhooks/message", Some(&msg))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);

    let sessions = app
        .get(&format!(
            "/tenants/{}/sessions",
            tenant["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(sessions.status, StatusCode::OK, "{}", sessions.text);
    let list = sessions.body["sessions"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["sessionKey"], key.as_str());
    assert_eq!(list[0]["channel"], "telegram");
    assert_eq!(list[0]["peerId"], "4242");
    assert_eq!(list[0]["chatType"], "direct");

    // Purging with a cutoff after the last activity removes it.
    let mut conn = db.connect();
    let purged =
        tenant_store::sessions::purge_inactive(&mut conn, Utc::now() - chrono::Duration::hours(1))
            .unwrap();
    assert_eq!(purged, 0);
    let purged = tenant_store::sessions::purge_inactive(
        &mut conn,
        Utc::now() + chrono::Duration::seconds(1),
    )
    .unwrap();
    assert_eq!(purged, 1);
}

#[tokio::test]
async fn events_that_name_no_tenant_are_422_naming_the_field() {
    let db = TestDb::new();
    let app = app(&db).await;
    let tenant = app.create_tenant("Known").await;
    let gw = Some(app.gateway_token.as_str());
    let cases = [
        (
            json!({"id": "x1", "type": "message.sent", "accountId": "tenant-ffffffff"}),
            "accountId",
        ),
        (
            json!({"id": "x2", "type": "message.sent", "agentId": "agent-ffffffff"}),
            "agentId",
        ),
        (json!({"id": "x3", "type": "message.sent"}), "accountId"),
        (
            json!({"id": "x4", "type": "message.sent", "sessionKey": "agent:agent-ffffffff:telegram:a:direct:1"}),
            "sessionKey",
        ),
        (
            json!({"id": "x5", "type": "message.sent", "accountId": tenant["accountId"], "agentId": "agent-ffffffff"}),
            "agentId",
        ),
        (
            json!({"id": "x6", "type": "bogus", "accountId": tenant["accountId"]}),
            "type",
        ),
        (
            json!({"id": "x7", "type": "message.sent", "sessionKey": "not-a-key"}),
            "sessionKey",
        ),
        (
            json!({"id": "", "type": "message.sent", "accountId": tenant["accountId"]}),
            "id",
        ),
    ];
    for (body, field) in cases {
        let r = app
            .request_as(gw, Method::POST, "/events", Some(&body))
            .await;
        r.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(
            r.invalid_fields().contains(&field.to_owned()),
            "{body}: {}",
            r.text
        );
    }
    // The gateway may post events but not manage webhooks.
    let r = app
        .request_as(
            gw,
            Method::GET,
            &format!("/tenants/{}/webhooks", tenant["id"].as_str().unwrap()),
            None,
        )
        .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    let r = app
        .request_as(None, Method::POST, "/events", Some(&json!({})))
        .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn endpoint_validation_and_save_time_ssrf_refusals() {
    let db = TestDb::new();
    let mut settings = moltbot_saas_tests::test_settings(&db);
    settings.webhooks.dispatcher = false;
    let app = moltbot_saas_tests::spawn_app_with(settings).await;
    let tenant = app.create_tenant("Guarded").await;
    let path = format!("/tenants/{}/webhooks", tenant["id"].as_str().unwrap());
    for url in [
        "http://127.0.0.1:9/x",
        "http://localhost:9/x",
        "http://10.0.0.1/x",
        "http://192.168.1.10/x",
        "http://169.254.169.254/latest/meta-data",
        "http://169.254.10.1/x",
        "http://[fe80::1]/x",
        "http://[fd00::1]/x",
        "http://224.0.0.1/x",
        "http://[::ffff:127.0.0.1]/x",
        "ftp://example.com/x",
        "not a url",
        "http://user:pw@example.com/x",
    ] {
        let r = app.post(&path, &json!({"url": url})).await;
        r.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(r.invalid_fields(), ["url"], "{url}: {}", r.text);
    }
    let r = app
        .post(
            &path,
            &json!({"url": "https://example.com/h", "eventTypes": ["nope"]}),
        )
        .await;
    assert_eq!(r.invalid_fields(), ["eventTypes"]);
    let r = app
        .post(&path, &json!({"url": "https://example.com/h", "extra": 1}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = app
        .post(&path, &json!({"url": "https://example.com/h", "eventTypes": ["message.sent"], "description": "CRM"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let wid = r.body["id"].as_str().unwrap().to_owned();
    let list = app.get(&path).await;
    assert_eq!(list.body["webhooks"].as_array().unwrap().len(), 1);
    assert!(list.body["webhooks"][0].get("secret").is_none());
    let r = app
        .patch(
            &format!("{path}/{wid}"),
            &json!({"description": null, "eventTypes": []}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["description"].is_null());
    let r = app
        .patch(
            &format!("{path}/{wid}"),
            &json!({"url": "http://10.1.1.1/"}),
        )
        .await;
    assert_eq!(r.invalid_fields(), ["url"]);
    assert_eq!(
        app.delete(&format!("{path}/{wid}")).await.status,
        StatusCode::NO_CONTENT
    );
    app.get(&format!("{path}/{wid}"))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

/// URLs saved before a policy change (or names re-pointed since): the guard refuses them at
/// delivery, on the addresses actually resolved, and never connects.
#[tokio::test]
async fn deliveries_to_forbidden_addresses_are_refused_at_send_time() {
    let db = TestDb::new();
    let app = app(&db).await;
    let rx = WebhookReceiver::start().await;
    let (tenant, _) = tenant_with_endpoint(&app, &rx.url).await;
    let tenant_id: tenant_core::TenantId = tenant["id"].as_str().unwrap().parse().unwrap();
    let mut conn = db.connect();
    for url in [
        format!("http://localhost:{}/hook", rx.port),
        format!("http://127.0.0.1:{}/hook", rx.port),
        "http://10.0.0.1/x".to_owned(),
        "http://169.254.169.254/x".to_owned(),
        "http://169.254.3.3/x".to_owned(),
        "http://[fe80::1]/x".to_owned(),
        "http://[fd12::1]/x".to_owned(),
        "http://239.1.1.1/x".to_owned(),
    ] {
        webhooks::insert(
            &mut conn,
            &tenant_id,
            NewEndpoint {
                url,
                description: None,
                event_types: vec![],
                enabled: true,
                secret: Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            },
            Utc::now(),
            &moltbot_saas_tests::test_keys(),
        )
        .unwrap();
    }
    send_event(&app, &tenant, "gw-evt-ssrf").await;
    // Nothing allow-listed: even the real receiver on 127.0.0.1 (directly or as `localhost`) is
    // refused.
    let d = dispatcher(&db, config("0s,1s", Duration::from_secs(2), ""));
    let o = d.dispatch_due(Utc::now()).await.unwrap();
    assert_eq!(o.claimed, 9);
    assert_eq!(o.retried, 9);
    assert_eq!(rx.count(), 0, "no forbidden destination was contacted");
    assert_eq!(d.metrics().snapshot().refused, 9);
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Deleting an endpoint while a dispatcher records one of its deliveries' results (that
/// delivery's row locked first, then the endpoint's circuit written, which locks the endpoint's
/// key) waits for the dispatcher instead of deadlocking with it: before the fix, the delete
/// locked the endpoint first and the deliveries through its cascade after, and PostgreSQL
/// failed one of the two (`deadlock detected`, a 500). PostgreSQL only: SQLite writes one
/// transaction at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_endpoint_waits_for_a_delivery_result_being_recorded() {
    use diesel::connection::Connection;
    use diesel::prelude::*;
    use tenant_store::endpoint_circuits::{self, CircuitRow};

    let db = TestDb::new();
    if db.backend() != "postgres" {
        eprintln!("skipped: needs PostgreSQL (set TEST_DATABASE_URL)");
        return;
    }
    let app = app(&db).await;
    let (tenant, endpoint) = tenant_with_endpoint(&app, "https://hooks.example.com/busy").await;
    let (tid, eid) = (
        tenant["id"].as_str().unwrap().to_owned(),
        endpoint["id"].as_str().unwrap().to_owned(),
    );
    let r = app
        .post(&format!("/tenants/{tid}/webhooks/{eid}/test"), &json!({}))
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let (mut recorder, mut watcher) = (db.connect(), db.connect());
    recorder
        .transaction(|c| {
            // The dispatcher's order: the delivery's row, then (below) the circuit.
            let locked = diesel::sql_query(format!(
                "UPDATE webhook_deliveries SET attempts = attempts WHERE endpoint_id = '{eid}'"
            ))
            .execute(c)?;
            assert_eq!(locked, 1);
            let url = format!("/tenants/{tid}/webhooks/{eid}");
            let deleting = {
                let client = reqwest::Client::new();
                let full = format!("{}{url}", app.address);
                let token = app.operator_token.clone();
                tokio::spawn(async move {
                    client
                        .delete(full)
                        .bearer_auth(token)
                        .send()
                        .await
                        .unwrap()
                        .status()
                })
            };
            // Once the delete waits on a lock, the result is recorded: the circuit written.
            let since = std::time::Instant::now();
            let waiting = "SELECT count(*) AS n FROM pg_stat_activity \
                           WHERE wait_event_type = 'Lock' AND datname = current_database()";
            while diesel::sql_query(waiting)
                .get_result::<Count>(&mut watcher)
                .unwrap()
                .n
                == 0
            {
                assert!(
                    since.elapsed() < Duration::from_secs(40),
                    "the delete never waited on the delivery being recorded"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            let mut row = CircuitRow::closed(&eid);
            row.failures = 1;
            endpoint_circuits::save(c, &row, Utc::now()).expect("the result is recorded");
            Ok::<_, diesel::result::Error>(deleting)
        })
        .map(|deleting| async move {
            assert_eq!(deleting.await.unwrap(), StatusCode::NO_CONTENT);
        })
        .unwrap()
        .await;
    let r = app.get(&format!("/tenants/{tid}/webhooks/{eid}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    app.stop().await;
}
