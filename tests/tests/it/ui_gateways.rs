//! The gateway fleet pages of the admin dashboard (issue 25): an operator lists the gateways,
//! adds one (its token shown once and working at once), changes its capacity, drains and opens
//! it, rotates its token (the old one refused), reads its document and deletes it; places the
//! tenants waiting for room; sees a tenant's gateway on its page and asks for a dedicated
//! gateway there or withdraws the wish; bad input is a clear error page; nobody else sees the
//! pages.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use moltbot_saas_tests::{TestApp, TestDb, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::ui_support::{Browser, operator_user};

const DEFAULT: &str = "00000000-0000-0000-0000-000000000000";

/// The value of the page's shown-once secret field.
fn shown_token(html: &str) -> String {
    let at = html.find("id=\"secret-value\"").expect("a secret is shown");
    let start = html[..at].rfind("value=\"").expect("its value") + "value=\"".len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end].to_owned()
}

async fn config_status(app: &TestApp, token: &str) -> StatusCode {
    app.request_as(Some(token), Method::GET, "/config", None)
        .await
        .status
}

#[tokio::test]
async fn an_operator_runs_the_gateway_fleet_from_the_dashboard() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    operator_user(&app, "op@example.com").await;

    // Nobody but a logged-in operator gets the pages.
    let mut anonymous = Browser::new(&app);
    assert_eq!(
        anonymous.get("/admin/gateways").await.status,
        StatusCode::SEE_OTHER
    );

    let mut b = Browser::new(&app);
    b.log_in("", "op@example.com").await;
    let list = b.get("/admin/gateways").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.html);
    assert!(list.html.contains(&format!("/admin/gateways/{DEFAULT}")));
    assert!(list.html.contains("no limit"), "{}", list.html);

    // Added: the token is shown once and works at once.
    let added = b
        .post(
            "/admin/gateways",
            &[("name", "pool-1"), ("kind", "shared"), ("capacity", "2")],
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.html);
    let token = shown_token(&added.html);
    assert!(token.starts_with("msgw_"), "{token}");
    assert!(added.html.contains("config sync --gateway pool-1"));
    assert_eq!(config_status(&app, &token).await, StatusCode::OK);
    let id = {
        let at = added.html.find("/admin/gateways/").unwrap() + "/admin/gateways/".len();
        added.html[at..at + 36].to_owned()
    };
    let detail = b.get(&format!("/admin/gateways/{id}")).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(detail.html.contains("0 / 2"), "{}", detail.html);
    assert!(
        !detail.html.contains(&token),
        "the token is never shown again"
    );

    // Bad input is an error page naming the field; nothing changes.
    let bad = b
        .post(
            &format!("/admin/gateways/{id}/capacity"),
            &[("capacity", "lots")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.html);
    assert!(bad.html.contains("capacity"));
    let taken = b
        .post(
            "/admin/gateways",
            &[("name", "pool-1"), ("kind", "shared"), ("capacity", "2")],
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.html);

    // Capacity, drain, open.
    let set = b
        .post(
            &format!("/admin/gateways/{id}/capacity"),
            &[("capacity", "5")],
        )
        .await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", set.html);
    assert!(
        b.get(&format!("/admin/gateways/{id}"))
            .await
            .html
            .contains("0 / 5")
    );
    let drained = b
        .post(
            &format!("/admin/gateways/{id}/draining"),
            &[("draining", "true")],
        )
        .await;
    assert_eq!(drained.status, StatusCode::SEE_OTHER);
    let api = app.get(&format!("/gateways/{id}")).await;
    assert_eq!(api.body["draining"], true, "{}", api.text);
    b.post(
        &format!("/admin/gateways/{id}/draining"),
        &[("draining", "false")],
    )
    .await;
    assert_eq!(
        app.get(&format!("/gateways/{id}")).await.body["draining"],
        false
    );

    // Its document, by id.
    let doc = b.get(&format!("/admin/gateway?gateway={id}")).await;
    assert_eq!(doc.status, StatusCode::OK, "{}", doc.html);
    assert!(doc.html.contains("Config of gateway pool-1"));

    // Rotated: a new token shown once, the old one refused.
    let rotated = b.post(&format!("/admin/gateways/{id}/rotate"), &[]).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.html);
    let new_token = shown_token(&rotated.html);
    assert_ne!(new_token, token);
    assert_eq!(config_status(&app, &new_token).await, StatusCode::OK);
    assert_eq!(config_status(&app, &token).await, StatusCode::UNAUTHORIZED);

    // Deleted; `default` offers no delete.
    let deleted = b.post(&format!("/admin/gateways/{id}/delete"), &[]).await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert_eq!(deleted.location(), "/admin/gateways?notice=gateway_deleted");
    let list = b.get("/admin/gateways?notice=gateway_deleted").await;
    assert!(!list.html.contains("pool-1"));
    assert!(list.html.contains("The gateway was deleted."));
    assert_eq!(
        config_status(&app, &new_token).await,
        StatusCode::UNAUTHORIZED
    );
    let builtin = b.get(&format!("/admin/gateways/{DEFAULT}")).await;
    assert!(!builtin.html.contains("Delete gateway"));

    // Every change is in the audit log, by the operator.
    let audit = app.get("/audit?limit=100").await;
    for action in [
        "gateway.created",
        "gateway.updated",
        "gateway.drained",
        "gateway.token_rotated",
        "gateway.deleted",
    ] {
        assert!(audit.text.contains(action), "{action}: {}", audit.text);
    }
    app.stop().await;
}

#[tokio::test]
async fn an_operator_places_the_tenants_waiting_for_room() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    operator_user(&app, "op@example.com").await;
    // Only the button places anyone here.
    crate::fleet_pending::hold_pending_lease(&db);
    crate::fleet::close_default(&app).await;
    let mut tenants = Vec::new();
    for name in ["First Waiting", "Second Waiting"] {
        tenants.push(
            app.create_tenant(name).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let state = |t: String| {
        let app = &app;
        async move { app.get(&format!("/tenants/{t}")).await.body["placement"]["state"].clone() }
    };

    // Nobody but a logged-in operator may press it.
    let mut anonymous = Browser::new(&app);
    let r = anonymous.post("/admin/gateways/place-pending", &[]).await;
    assert!(
        r.location().starts_with("/login"),
        "{} {}",
        r.status,
        r.html
    );

    let mut b = Browser::new(&app);
    b.log_in("", "op@example.com").await;
    let list = b.get("/admin/gateways").await;
    assert!(
        list.html.contains("<strong>2</strong> tenant(s)"),
        "{}",
        list.html
    );
    assert!(list.html.contains("Place waiting tenants now"));

    // No room anywhere: nobody placed, and the page says why.
    let r = b.post("/admin/gateways/place-pending", &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert_eq!(r.location(), "/admin/gateways?notice=none_placed");
    assert!(
        b.get(r.location())
            .await
            .html
            .contains("No gateway has room")
    );

    // Room for one: the older is placed, the other still waits.
    let pool = app
        .post(
            "/gateways",
            &json!({"name": "pool", "kind": "shared", "capacity": 1}),
        )
        .await;
    assert_eq!(pool.status, StatusCode::CREATED, "{}", pool.text);
    let r = b.post("/admin/gateways/place-pending", &[]).await;
    assert_eq!(r.location(), "/admin/gateways?notice=some_placed");
    assert_eq!(state(tenants[0].clone()).await, "placed");
    assert_eq!(state(tenants[1].clone()).await, "unplaced");
    let list = b.get(r.location()).await;
    assert!(
        list.html.contains("<strong>1</strong> tenant(s)"),
        "{}",
        list.html
    );
    assert!(list.html.contains("still wait for room"));

    // Room for all.
    let pool_id = pool.body["id"].as_str().unwrap();
    app.patch(&format!("/gateways/{pool_id}"), &json!({"capacity": 2}))
        .await;
    let r = b.post("/admin/gateways/place-pending", &[]).await;
    assert_eq!(r.location(), "/admin/gateways?notice=all_placed");
    assert_eq!(state(tenants[1].clone()).await, "placed");
    let list = b.get(r.location()).await;
    assert!(
        list.html
            .contains("None: every active tenant is on a gateway.")
    );
    assert!(!list.html.contains("Place waiting tenants now"));
    let r = b.post("/admin/gateways/place-pending", &[]).await;
    assert_eq!(r.location(), "/admin/gateways?notice=none_waiting");

    // Audited as the operator's request.
    let audit = app.get("/audit?action=tenant.placed&limit=100").await;
    let placed: Vec<&serde_json::Value> = audit.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["details"]["state"] == "placed")
        .collect();
    assert_eq!(placed.len(), 2, "{}", audit.text);
    for entry in placed {
        assert_eq!(entry["details"]["reason"], "place_pending", "{entry}");
        assert_eq!(entry["actor"]["type"], "operator_user", "{entry}");
    }
    app.stop().await;
}

#[tokio::test]
async fn an_operator_asks_for_a_dedicated_gateway_on_the_tenants_page() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    operator_user(&app, "op@example.com").await;
    crate::fleet::close_default(&app).await;
    let pool = crate::fleet::gateway_of(&app, "pool", "shared", 5).await;
    let (id, _) = crate::users_support::tenant_with_owner(&app, "alpha").await;
    let page = format!("/admin/tenants/{id}");
    let form = format!("{page}/dedicated");
    let placement = || {
        let (app, id) = (&app, id.clone());
        async move { crate::fleet::placement(app, &id).await }
    };

    let mut b = Browser::new(&app);
    b.log_in("", "op@example.com").await;
    let overview = b.get(&page).await;
    assert_eq!(overview.status, StatusCode::OK, "{}", overview.html);
    assert!(
        overview.html.contains("id=\"placement\""),
        "{}",
        overview.html
    );
    assert!(
        overview
            .html
            .contains(&format!("/admin/gateways/{}\">pool</a>", pool.id))
    );
    assert!(overview.html.contains("data-dedicated=\"false\""));
    assert!(overview.html.contains("Ask for a dedicated gateway"));

    // No dedicated gateway: an error page saying why, and nothing changed.
    let refused = b.post(&form, &[("dedicated", "true")]).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.html);
    assert!(
        refused.html.contains("no dedicated gateway has room"),
        "{}",
        refused.html
    );
    assert_eq!(placement().await["dedicated"], false);
    // Bad input names the field; a form without the CSRF token is refused.
    let bad = b.post(&form, &[("dedicated", "maybe")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.html);
    assert!(bad.html.contains("dedicated"));
    let forged = b.post_raw(&form, &[("dedicated", "true")], None).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.html);

    // With a free cell: the tenant starts moving there, and its page says so.
    let cell = crate::fleet::gateway_of(&app, "cell", "dedicated", 1).await;
    let asked = b.post(&form, &[("dedicated", "true")]).await;
    assert_eq!(asked.status, StatusCode::SEE_OTHER, "{}", asked.html);
    assert_eq!(asked.location(), format!("{page}?notice=dedicated_moving"));
    let p = placement().await;
    assert_eq!(
        (
            p["state"].as_str(),
            p["targetGatewayId"].as_str(),
            p["dedicated"].as_bool()
        ),
        (Some("moving"), Some(cell.id.as_str()), Some(true)),
        "{p}"
    );
    let overview = b.get(asked.location()).await;
    assert!(
        overview
            .html
            .contains("is moving to a gateway of the kind it wants")
    );
    assert!(overview.html.contains("Moving to"));
    assert!(
        overview
            .html
            .contains(&format!("/admin/gateways/{}\">cell</a>", cell.id))
    );
    assert!(overview.html.contains("data-dedicated=\"true\""));
    assert!(overview.html.contains("Withdraw the dedicated wish"));
    assert_eq!(crate::fleet_loads::acknowledge(&app, &pool.token).await, 1);
    let overview = b.get(&page).await;
    assert!(!overview.html.contains("Moving to"));
    assert!(
        overview
            .html
            .contains(&format!("/admin/gateways/{}\">cell</a>", cell.id))
    );

    // Audited as the operator.
    let audit = app.get("/audit?action=tenant.dedicated_changed").await;
    let entries = audit.body["events"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{}", audit.text);
    assert_eq!(
        entries[0]["actor"]["type"], "operator_user",
        "{}",
        audit.text
    );
    assert_eq!(entries[0]["details"]["dedicated"], true, "{}", audit.text);

    // Tenant users see no such card and cannot post the form.
    let mut owner = Browser::new(&app);
    owner.log_in("alpha", "owner@alpha.test").await;
    let portal = owner.get("/portal").await;
    assert_eq!(portal.status, StatusCode::OK, "{}", portal.html);
    assert!(!portal.html.contains("id=\"placement\""));
    let r = owner
        .post("/portal/dedicated", &[("dedicated", "false")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.html);
    assert_eq!(placement().await["dedicated"], true);

    // Withdrawn: back to the shared pool.
    let withdrawn = b.post(&form, &[("dedicated", "false")]).await;
    assert_eq!(
        withdrawn.location(),
        format!("{page}?notice=dedicated_moving")
    );
    assert_eq!(crate::fleet_loads::acknowledge(&app, &cell.token).await, 1);
    let p = placement().await;
    assert_eq!(
        (
            p["state"].as_str(),
            p["gatewayId"].as_str(),
            p["dedicated"].as_bool()
        ),
        (Some("placed"), Some(pool.id.as_str()), Some(false)),
        "{p}"
    );
    // The same value again changes nothing.
    let again = b.post(&form, &[("dedicated", "false")]).await;
    assert_eq!(again.location(), format!("{page}?notice=dedicated_off"));
    assert!(
        b.get(again.location())
            .await
            .html
            .contains("no longer asks for a dedicated gateway")
    );
    let audit = app.get("/audit?action=tenant.dedicated_changed").await;
    assert_eq!(
        audit.body["events"].as_array().unwrap().len(),
        2,
        "{}",
        audit.text
    );

    // The create form asks for a dedicated gateway too: the new tenant takes the free cell.
    assert!(
        b.get("/admin/tenants")
            .await
            .html
            .contains("name=\"dedicated\"")
    );
    let bad = b
        .post(
            "/admin/tenants",
            &[("name", "Bad Co"), ("dedicated", "maybe")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.html);
    let created = b
        .post(
            "/admin/tenants",
            &[("name", "Cell Co"), ("dedicated", "true")],
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.html);
    let cell_co = {
        let at = created.html.find("/admin/tenants/").unwrap() + "/admin/tenants/".len();
        created.html[at..at + 36].to_owned()
    };
    let p = crate::fleet::placement(&app, &cell_co).await;
    assert_eq!(
        (
            p["state"].as_str(),
            p["gatewayId"].as_str(),
            p["dedicated"].as_bool()
        ),
        (Some("placed"), Some(cell.id.as_str()), Some(true)),
        "{p}"
    );
    let list = app.get("/tenants").await;
    assert!(!list.text.contains("Bad Co"), "{}", list.text);
    crate::fleet_loads::exact(&db, "the dashboard's wishes");
    app.stop().await;
}
