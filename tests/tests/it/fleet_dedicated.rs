//! Asking for a dedicated gateway when creating a tenant (issue 25), through a real server on
//! both backends: `POST /tenants` with `dedicated: true` (operators only) or the CLI's
//! `tenants create --dedicated` places the tenant on a dedicated gateway with room as a plan in
//! `SAAS_DEDICATED_PLANS` would, even while shared gateways have more room; with no dedicated
//! room it waits `unplaced`, and is placed on the next dedicated gateway with room, never on a
//! shared one. Absent or `false`, the plan decides as before.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use moltbot_saas_tests::{TestApp, TestDb, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::fleet::{gateway_of, held, placement};
use crate::fleet_pending::placed;

const DEFAULT: &str = "00000000-0000-0000-0000-000000000000";

/// Creates a tenant with `body` as the operator; its id.
async fn create(app: &TestApp, body: &Value) -> String {
    app.create_tenant_with(body).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// (state, gateway, dedicated) of a tenant's placement.
async fn where_is(app: &TestApp, tenant: &str) -> (String, Option<String>, bool) {
    let p = placement(app, tenant).await;
    (
        p["state"].as_str().unwrap().to_owned(),
        p["gatewayId"].as_str().map(str::to_owned),
        p["dedicated"].as_bool().unwrap(),
    )
}

fn on(gateway: &str, dedicated: bool) -> (String, Option<String>, bool) {
    ("placed".to_owned(), Some(gateway.to_owned()), dedicated)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_created_dedicated_goes_to_a_dedicated_gateway_or_waits_for_one() {
    let db = TestDb::new();
    // No plan wants a dedicated gateway here: only the wish does.
    let app = spawn_app(&db).await;
    crate::fleet::close_default(&app).await;
    let pool = gateway_of(&app, "pool", "shared", 5).await.id;
    let cell = gateway_of(&app, "cell", "dedicated", 1).await.id;

    // Absent or `false`: the plan decides, as before (a shared gateway).
    let plain = create(&app, &json!({"name": "Plain"})).await;
    assert_eq!(where_is(&app, &plain).await, on(&pool, false));
    let unasked = create(&app, &json!({"name": "Unasked", "dedicated": false})).await;
    assert_eq!(where_is(&app, &unasked).await, on(&pool, false));

    // Asked: the dedicated gateway, though the pool has more room.
    let r = app
        .post("/tenants", &json!({"name": "Cell Co", "dedicated": true}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let cell_co = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(where_is(&app, &cell_co).await, on(&cell, true));
    let detail = app.get(&format!("/tenants/{cell_co}")).await;
    assert_eq!(
        detail.body["placement"],
        json!({"gatewayId": cell, "state": "placed", "dedicated": true}),
        "{}",
        detail.text
    );
    assert_eq!(held(&app, &cell).await, 1);
    assert_eq!(held(&app, &pool).await, 2);

    // No dedicated room left: it waits, though the pool has room.
    let waiting = create(&app, &json!({"name": "Waiting Co", "dedicated": true})).await;
    let (state, gateway, dedicated) = where_is(&app, &waiting).await;
    assert_eq!(
        (state.as_str(), gateway, dedicated),
        ("unplaced", None, true)
    );
    assert_eq!(held(&app, &pool).await, 2);

    // A dedicated gateway created: the waiting tenant goes there (placed by itself), not to
    // the pool.
    let cell2 = gateway_of(&app, "cell-2", "dedicated", 1).await.id;
    let p = placed(&app, &waiting).await;
    assert_eq!(p["gatewayId"], cell2.as_str(), "{p}");
    assert_eq!(p["dedicated"], true, "{p}");
    assert_eq!(held(&app, &pool).await, 2);
    assert_eq!(held(&app, &cell2).await, 1);
    // A later tenant without the wish still goes to the pool.
    let later = create(&app, &json!({"name": "Later"})).await;
    assert_eq!(where_is(&app, &later).await, on(&pool, false));

    // Drained, its gateway sends it to a free dedicated gateway, not to the pool with room.
    let cell3 = gateway_of(&app, "cell-3", "dedicated", 1).await.id;
    let r = app
        .request(Method::POST, &format!("/gateways/{cell}/drain"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (r.body["moving"].as_i64(), r.body["remaining"].as_i64()),
        (Some(1), Some(0))
    );
    let p = placement(&app, &cell_co).await;
    assert_eq!(
        (
            p["state"].as_str(),
            p["targetGatewayId"].as_str(),
            p["dedicated"].as_bool()
        ),
        (Some("moving"), Some(cell3.as_str()), Some(true)),
        "{p}"
    );
    assert_eq!(held(&app, &pool).await, 3);
    crate::fleet_loads::exact(&db, "a tenant created dedicated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_operator_asks_and_only_with_a_boolean() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let owner = app.create_tenant("Owner Co").await;
    let key = owner["apiKey"].as_str().unwrap();
    let body = json!({"name": "Intruder", "dedicated": true});
    app.request_as(Some(key), Method::POST, "/tenants", Some(&body))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    for bad in [json!("yes"), json!(1), json!({"on": true})] {
        app.post("/tenants", &json!({"name": "Bad", "dedicated": bad}))
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    }
    // Nobody was created but the owner's tenant.
    let list = app.get("/tenants").await;
    assert_eq!(
        list.body["tenants"].as_array().unwrap().len(),
        1,
        "{}",
        list.text
    );
    // Without the wish, a single-gateway setup keeps its tenant on `default`, as before.
    assert_eq!(
        where_is(&app, owner["id"].as_str().unwrap()).await,
        on(DEFAULT, false)
    );
}

/// `moltbot-saas tenants create ARGS` on `db`; the tenant it prints.
fn cli_create(db: &TestDb, args: &[&str]) -> Value {
    let out = crate::config_sync::command(db)
        // Else the binary makes a development secret file in the working directory.
        .env(
            "SAAS_API_KEY_SECRET",
            "cli-test-api-key-secret-0123456789abcdef",
        )
        .args(["tenants", "create"])
        .args(args)
        .output()
        .expect("run moltbot-saas");
    serde_json::from_str(&crate::config_sync::succeed(&out)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_asks_with_dedicated() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    crate::fleet::close_default(&app).await;
    let pool = gateway_of(&app, "pool", "shared", 5).await.id;
    let cell = gateway_of(&app, "cell", "dedicated", 1).await.id;
    let created = cli_create(&db, &["--name", "Cli Cell", "--dedicated"]);
    let id = created["id"].as_str().unwrap();
    assert_eq!(where_is(&app, id).await, on(&cell, true));
    let created = cli_create(&db, &["--name", "Cli Plain"]);
    let id = created["id"].as_str().unwrap();
    assert_eq!(where_is(&app, id).await, on(&pool, false));
}
