use moltbot_saas_tests::{TestDb, spawn_app};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn create_then_read_a_tenant() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let created = app.create_tenant("Acme Corp").await;
    assert!(created["apiKey"].as_str().unwrap().starts_with("msk_live_"));
    let id = created["id"].as_str().unwrap();
    let r = app.get(&format!("/tenants/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["name"], "Acme Corp");
    assert_eq!(r.body["accountId"], format!("tenant-{}", &id[..8]));
    assert!(r.body.get("apiKey").is_none());
    let _ = json!({});
}
