//! Data written through one server is read back by the next one on the same database.

use moltbot_saas_tests::{TestDb, spawn_app};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn data_survives_a_server_restart() {
    let db = TestDb::new();
    let first = spawn_app(&db).await;
    let created = first
        .create_tenant_with(&json!({"name": "Durable Co", "slug": "durable", "plan": "pro"}))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let r = first
        .post(
            &format!("/tenants/{id}/channels"),
            &json!({"channel": "telegram", "credentials": {"botToken": "123456:AAdurableTOKEN_value"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let channel = r.body;
    let r = first
        .patch(&format!("/tenants/{id}"), &json!({"status": "suspended"}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let tenant = r.body;
    let counts = db.row_counts();
    first.stop().await;

    let second = spawn_app(&db).await;
    let r = second.get(&format!("/tenants/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // An operator also sees where it is placed (not part of the PATCH answer).
    let mut read = r.body.clone();
    let placement = read.as_object_mut().unwrap().remove("placement");
    assert_eq!(
        placement,
        Some(json!({
            "gatewayId": "00000000-0000-0000-0000-000000000000",
            "state": "placed",
            "dedicated": false,
        }))
    );
    assert_eq!(read, tenant, "the tenant, field for field");
    let r = second
        .get(&format!("/tenants/{id}/channels/telegram"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, channel, "the channel, field for field");
    assert_eq!(r.body["state"], "ready");
    let r = second.get("/tenants?status=suspended").await;
    assert_eq!(r.body["tenants"][0]["id"], id.as_str());
    assert_eq!(db.row_counts(), counts, "a restart writes nothing");
    // And the second server can change what the first wrote.
    let r = second.delete(&format!("/tenants/{id}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    second.stop().await;
}
