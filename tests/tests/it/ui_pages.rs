//! The dashboard and the portal over HTTP: redirects, cookies and their attributes, CSRF, the
//! security headers, escaping, the operator's tasks, the portal's scoping by role and tenant,
//! and per-tenant hosts (`{slug}.localhost`) with and without a trusted proxy.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use moltbot_saas_tests::{TestDb, spawn_app, spawn_app_with, test_settings};
use reqwest::StatusCode;

use crate::ui_support::{Browser, operator_user};
use crate::users_support::{create_user, tenant_with_owner};

const XSS: &str = "<script>alert(1)</script>";

#[tokio::test]
async fn browsers_are_sent_to_the_login_page_and_api_clients_keep_json() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let mut b = Browser::new(&app);

    let root = b.get("/").await;
    assert_eq!(root.status, StatusCode::SEE_OTHER);
    assert_eq!(root.location(), "/admin");
    let admin = b.get("/admin/tenants?q=x").await;
    assert_eq!(admin.status, StatusCode::SEE_OTHER);
    assert_eq!(admin.location(), "/login?next=/admin/tenants%3Fq%3Dx");

    // An API client asking `/` without a token still gets the API's 401.
    app.request_as(None, reqwest::Method::GET, "/", None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    app.request_as(None, reqwest::Method::GET, "/tenants", None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");

    let login = b.get("/login?next=/admin/tenants").await;
    assert_eq!(login.status, StatusCode::OK);
    let csp = login.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(login.headers["x-frame-options"], "DENY");
    assert_eq!(login.headers["cache-control"], "no-store");
    assert!(login.html.contains(r#"name="csrf""#));
    assert!(
        login.html.contains(r#"value="/admin/tenants""#),
        "next is kept"
    );
    let csrf = Browser::new(&app)
        .get("/login")
        .await
        .set_cookie("msk_csrf")
        .unwrap();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Secure"] {
        assert!(csrf.contains(attr), "{csrf} lacks {attr}");
    }
    // No inline script or style anywhere (the CSP would block them).
    assert!(!login.html.contains("<script>"));
    assert!(!login.html.contains("style="));

    // The assets are served by the binary.
    let css = b.get("/ui/app.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(
        css.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(b.get("/ui/app.js").await.html.contains("data-confirm"));

    // An unknown page is a page.
    let missing = b.get("/admin/nothing-here").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.html.contains("Page not found"));
    app.stop().await;
}

#[tokio::test]
async fn an_operator_manages_tenants_channels_and_keys_in_pages() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    operator_user(&app, "op@example.com").await;
    let mut b = Browser::new(&app);

    // A wrong password is the login page again, with the API's message.
    let wrong = b
        .post(
            "/login",
            &[
                ("email", "op@example.com"),
                ("password", "not the password!"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.html.contains("Invalid email or password"));
    assert!(!b.cookies.contains_key("msk_session"));

    let login = b.log_in("", "op@example.com").await;
    assert_eq!(login.location(), "/admin");
    for name in ["msk_session", "msk_refresh"] {
        let c = login.set_cookie(name).unwrap();
        for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Secure"] {
            assert!(c.contains(attr), "{c} lacks {attr}");
        }
    }
    assert!(
        login
            .set_cookie("msk_refresh")
            .unwrap()
            .contains("Max-Age=2592000")
    );

    let list = b.get("/admin/tenants").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.html.contains("No tenants yet"), "empty state");

    // Create, with a name that is markup: escaped everywhere.
    let created = b
        .post(
            "/admin/tenants",
            &[("name", XSS), ("slug", "acme"), ("plan", "pro")],
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.html);
    assert!(!created.html.contains(XSS));
    assert!(
        created
            .html
            .contains("&lt;script&gt;alert(1)&lt;/script&gt;")
    );
    assert!(
        created.html.contains("msk_live_"),
        "the owner key, shown once"
    );
    let listed = app.get("/tenants?q=script").await;
    let tenant_id = listed.body["tenants"][0]["id"].as_str().unwrap().to_owned();
    let list = b.get("/admin/tenants").await;
    assert!(!list.html.contains(XSS));
    assert!(list.html.contains(&format!("/admin/tenants/{tenant_id}")));
    // Filters: no suspended tenants, none on the free plan, none named "zzz".
    for q in ["status=suspended", "plan=free", "q=zzz"] {
        let page = b.get(&format!("/admin/tenants?{q}")).await;
        assert!(page.html.contains("No tenant matches"), "{q}");
    }
    let bad = b.get("/admin/tenants?status=sleeping").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.html.contains("validation_failed"));

    // Errors from the API's codes: a taken slug.
    let taken = b
        .post("/admin/tenants", &[("name", "Other"), ("slug", "acme")])
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert!(taken.html.contains("conflict"));

    // A channel: added awaiting credentials, then ready; values never shown.
    let base = format!("/admin/tenants/{tenant_id}");
    let added = b
        .post(&format!("{base}/channels"), &[("kind", "telegram")])
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER);
    let page = b.get(&base).await;
    assert!(page.html.contains("awaiting credentials"));
    assert!(page.html.contains("missing"));
    let token = "123456:AAsecret-telegram_token";
    let set = b
        .post(
            &format!("{base}/channels/telegram/credentials"),
            &[("cred_botToken", token)],
        )
        .await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", set.html);
    let page = b.get(set.location()).await;
    assert!(page.html.contains("The channel was updated"));
    assert!(page.html.contains(">ready<"), "{}", page.html);
    assert!(!page.html.contains(token), "a credential is never shown");
    let api = app
        .get(&format!("/tenants/{tenant_id}/channels/telegram"))
        .await;
    assert_eq!(api.body["state"], "ready", "{}", api.text);
    // Invalid credentials: the field and the rule, not the value.
    let invalid = b
        .post(
            &format!("{base}/channels/telegram/credentials"),
            &[("cred_botToken", "not-a-token")],
        )
        .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(invalid.html.contains("botToken"));
    assert!(!invalid.html.contains("not-a-token"));
    // Disable.
    b.post(
        &format!("{base}/channels/telegram/enabled"),
        &[("enabled", "false")],
    )
    .await;
    let api = app
        .get(&format!("/tenants/{tenant_id}/channels/telegram"))
        .await;
    assert_eq!(api.body["state"], "disabled");

    // Keys: issued (shown once), then revoked.
    let issued = b
        .post(
            &format!("{base}/keys"),
            &[("name", "ci"), ("role", "admin")],
        )
        .await;
    assert_eq!(issued.status, StatusCode::OK);
    assert!(issued.html.contains("shown only this once"));
    let keys = app.get(&format!("/tenants/{tenant_id}/api-keys")).await;
    let ci = keys.body["apiKeys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "ci")
        .unwrap()
        .clone();
    let kid = ci["id"].as_str().unwrap();
    let page = b.get(&format!("{base}/keys")).await;
    assert!(page.html.contains(ci["prefix"].as_str().unwrap()));
    let revoked = b.post(&format!("{base}/keys/{kid}/revoke"), &[]).await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    let keys = app.get(&format!("/tenants/{tenant_id}/api-keys")).await;
    let ci = keys.body["apiKeys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == kid)
        .unwrap()
        .clone();
    assert!(ci["revokedAt"].is_string(), "{ci}");

    // Usage: the plan's limits and this month's figures, as the API reports them.
    let usage = b.get(&format!("{base}/usage")).await;
    assert_eq!(usage.status, StatusCode::OK, "{}", usage.html);
    let api = app.get(&format!("/tenants/{tenant_id}/usage")).await;
    let period = api.body["current"]["period"].as_str().unwrap();
    assert!(usage.html.contains(period), "{}", usage.html);
    assert!(usage.html.contains("Messages this month"));
    assert!(!usage.html.contains("quota exceeded"));

    // Audit: the page lists what the forms did, under the operator user.
    let audit = b.get(&format!("{base}/audit")).await;
    assert!(audit.html.contains("key.revoked"), "{}", audit.html);
    assert!(audit.html.contains("operator_user"));

    // Suspend, then delete with confirmation.
    b.post(&format!("{base}/status"), &[("status", "suspended")])
        .await;
    assert_eq!(
        app.get(&format!("/tenants/{tenant_id}")).await.body["status"],
        "suspended"
    );
    let confirm = b.get(&format!("{base}/delete")).await;
    assert!(confirm.html.contains("cannot be undone"));
    let wrong = b
        .post(&format!("{base}/delete"), &[("confirm", "nope")])
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    let deleted = b
        .post(&format!("{base}/delete"), &[("confirm", "acme")])
        .await;
    assert_eq!(deleted.location(), "/admin/tenants?notice=tenant_deleted");
    assert_eq!(
        app.get(&format!("/tenants/{tenant_id}")).await.status,
        StatusCode::NOT_FOUND
    );
    let gone = b.get(&base).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert!(gone.html.contains("Not found"));

    // An expired access cookie is renewed from the refresh cookie.
    b.cookies
        .insert("msk_session".into(), "expired.or.forged".into());
    let renewed = b.get("/admin/tenants").await;
    assert_eq!(renewed.status, StatusCode::OK);
    assert!(renewed.set_cookie("msk_session").is_some());
    assert!(renewed.set_cookie("msk_refresh").is_some());

    // Logging out ends the session: the refresh token no longer works.
    let refresh = b.cookies["msk_refresh"].clone();
    let out = b.post("/logout", &[]).await;
    assert_eq!(out.location(), "/login?notice=logged_out");
    assert!(out.set_cookie("msk_session").unwrap().contains("Max-Age=0"));
    assert!(!b.cookies.contains_key("msk_refresh"));
    b.cookies.insert("msk_refresh".into(), refresh);
    let after = b.get("/admin/tenants").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert!(after.location().starts_with("/login"));
    app.stop().await;
}

#[tokio::test]
async fn forms_without_the_csrf_token_or_from_another_origin_are_refused() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    operator_user(&app, "op@example.com").await;
    let mut b = Browser::new(&app);
    let csrf = b.csrf().await;

    // Login CSRF too.
    let no_token = b
        .post_raw(
            "/login",
            &[
                ("email", "op@example.com"),
                ("password", crate::users_support::PASSWORD),
            ],
            None,
        )
        .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    assert!(!b.cookies.contains_key("msk_session"));
    b.log_in("", "op@example.com").await;

    let no_token = b
        .post_raw("/admin/tenants", &[("name", "Forged")], None)
        .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    assert!(no_token.html.contains("Form expired"));
    let wrong = "0".repeat(64);
    let wrong_token = b
        .post_raw(
            "/admin/tenants",
            &[("csrf", &wrong), ("name", "Forged")],
            None,
        )
        .await;
    assert_eq!(wrong_token.status, StatusCode::FORBIDDEN);
    let other_site = b
        .post_raw(
            "/admin/tenants",
            &[("csrf", &csrf), ("name", "Forged")],
            Some("https://evil.example"),
        )
        .await;
    assert_eq!(other_site.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/tenants").await.body["tenants"]
            .as_array()
            .unwrap()
            .len(),
        0,
        "nothing was created"
    );
    // The same form from this origin passes.
    let origin = format!("http://127.0.0.1:{}", app.port);
    let ok = b
        .post_raw(
            "/admin/tenants",
            &[("csrf", &csrf), ("name", "Real")],
            Some(&origin),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.html);
    app.stop().await;
}

#[tokio::test]
async fn the_portal_shows_only_the_users_tenant_and_what_the_role_allows() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let (a_id, _) = tenant_with_owner(&app, "alpha").await;
    let (b_id, _) = tenant_with_owner(&app, "bravo").await;
    create_user(&app, &a_id, "member@alpha.test", "member").await;
    let r = app
        .post(
            &format!("/tenants/{b_id}/channels"),
            &serde_json::json!({"channel": "discord"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    // A member: reads channels and users, no keys, no forms that change things.
    let mut member = Browser::new(&app);
    let login = member.log_in("alpha", "member@alpha.test").await;
    assert_eq!(login.location(), "/portal");
    let portal = member.get("/portal").await;
    assert_eq!(portal.status, StatusCode::OK, "{}", portal.html);
    assert!(portal.html.contains("alpha"));
    assert!(!portal.html.contains("bravo"));
    assert!(!portal.html.contains("Add a channel"));
    assert!(!portal.html.contains("/portal/keys"), "no keys tab");
    assert!(!portal.html.contains("Suspend"));
    assert_eq!(member.get("/portal/users").await.status, StatusCode::OK);
    // Members may read their tenant's usage (the permission matrix's ReadUsage).
    let usage = member.get("/portal/usage").await;
    assert_eq!(usage.status, StatusCode::OK, "{}", usage.html);
    assert!(usage.html.contains("Messages this month"));
    let sessions = member.get("/portal/sessions").await;
    assert_eq!(sessions.status, StatusCode::OK);
    assert!(sessions.html.contains("No sessions yet"));
    assert!(
        !portal.html.contains("/portal/settings"),
        "members do not change the tenant"
    );
    let refused = member
        .post(
            "/portal/settings",
            &[("name", "Mine now"), ("plan", "free")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        member.get("/portal/keys").await.status,
        StatusCode::FORBIDDEN
    );
    let refused = member
        .post("/portal/channels", &[("kind", "telegram")])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.html.contains("forbidden"));
    // The admin is not theirs: another tenant's page, the tenants list.
    let other = member.get(&format!("/admin/tenants/{b_id}")).await;
    assert_eq!(other.location(), "/portal");
    assert_eq!(member.get("/admin/tenants").await.location(), "/portal");
    let forged = member
        .post(
            &format!("/admin/tenants/{b_id}/channels/discord/delete"),
            &[],
        )
        .await;
    assert_eq!(forged.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.get(&format!("/tenants/{b_id}/channels")).await.body["channels"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "bravo's channel is still there"
    );

    // The owner: keys and channels.
    let mut owner = Browser::new(&app);
    owner.log_in("alpha", "owner@alpha.test").await;
    let keys = owner.get("/portal/keys").await;
    assert_eq!(keys.status, StatusCode::OK);
    assert!(keys.html.contains("Issue key"));
    let added = owner
        .post("/portal/channels", &[("kind", "telegram")])
        .await;
    assert_eq!(added.location(), "/portal?notice=channel_added");
    let channels = app.get(&format!("/tenants/{a_id}/channels")).await;
    assert_eq!(channels.body["channels"][0]["channel"], "telegram");
    // The owner renames the tenant (not its status nor its plan: those are the operator's).
    let renamed = owner
        .post("/portal/settings", &[("name", "Alpha & Co")])
        .await;
    assert_eq!(renamed.location(), "/portal?notice=tenant_updated");
    let tenant = app.get(&format!("/tenants/{a_id}")).await;
    assert_eq!(tenant.body["name"], "Alpha & Co");
    assert_eq!(tenant.body["plan"], "free");
    let replan = owner
        .post(
            "/portal/settings",
            &[("name", "Alpha & Co"), ("plan", "enterprise")],
        )
        .await;
    assert_ne!(replan.location(), "/portal?notice=tenant_updated");
    assert_eq!(
        app.get(&format!("/tenants/{a_id}")).await.body["plan"],
        "free"
    );
    assert!(owner.get("/portal").await.html.contains("Alpha &amp; Co"));
    let status = owner
        .post("/portal/status", &[("status", "suspended")])
        .await;
    assert_eq!(status.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get(&format!("/tenants/{a_id}")).await.body["status"],
        "active"
    );
    // Invite a user: the token is shown once.
    let invited = owner
        .post(
            "/portal/users",
            &[("email", "new@alpha.test"), ("role", "admin")],
        )
        .await;
    assert_eq!(invited.status, StatusCode::OK, "{}", invited.html);
    assert!(invited.html.contains("Invite token"));
    app.stop().await;
}

#[tokio::test]
async fn tenant_hosts_serve_their_portal_and_unknown_ones_are_not_found() {
    let db = TestDb::new();
    let mut settings = test_settings(&db);
    settings.ui.base_domain = Some("localhost".into());
    let app = spawn_app_with(settings).await;
    let port = app.port;
    tenant_with_owner(&app, "alpha").await;
    tenant_with_owner(&app, "bravo").await;
    operator_user(&app, "op@example.com").await;

    let mut alpha = Browser::new(&app).on_host("alpha.localhost", port);
    assert_eq!(alpha.get("/").await.location(), "/portal");
    let login = alpha.get("/login").await;
    assert!(login.html.contains("Log in to alpha"));
    assert!(
        !login.html.contains(r#"name="tenant""#),
        "the host names the tenant"
    );
    // The host's tenant is the login's, whatever the form says.
    let page = alpha
        .post(
            "/login",
            &[
                ("tenant", "bravo"),
                ("email", "owner@alpha.test"),
                ("password", crate::users_support::PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.location(), "/portal");
    let portal = alpha.get("/portal").await;
    assert!(portal.html.contains("alpha"));
    // No admin on a tenant's host.
    assert_eq!(
        alpha.get("/admin/tenants").await.status,
        StatusCode::NOT_FOUND
    );
    // alpha's session presented on bravo's host: bravo is not found for it.
    let mut stolen = Browser::new(&app).on_host("bravo.localhost", port);
    stolen.cookies = alpha.cookies.clone();
    assert_eq!(stolen.get("/portal").await.status, StatusCode::NOT_FOUND);
    // bravo's owner cannot log in on alpha's host.
    let mut wrong = Browser::new(&app).on_host("alpha.localhost", port);
    let refused = wrong
        .post(
            "/login",
            &[
                ("email", "owner@bravo.test"),
                ("password", crate::users_support::PASSWORD),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);

    // Unknown tenant host: a 404 page.
    let mut nobody = Browser::new(&app).on_host("nobody.localhost", port);
    let missing = nobody.get("/login").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.html.contains("No such tenant"));

    // The apex and `admin.` serve the admin.
    let mut admin = Browser::new(&app).on_host("admin.localhost", port);
    admin.log_in("", "op@example.com").await;
    assert_eq!(admin.get("/admin/tenants").await.status, StatusCode::OK);
    let mut apex = Browser::new(&app).on_host("localhost", port);
    assert!(apex.get("/login").await.html.contains(r#"name="tenant""#));

    // X-Forwarded-Host is ignored from an untrusted peer.
    let mut proxied = Browser::new(&app);
    let page = proxied
        .get_with("/login", &[("x-forwarded-host", "alpha.localhost")])
        .await;
    assert!(!page.html.contains("Log in to alpha"));
    app.stop().await;

    // …and believed from a trusted one.
    let mut settings = test_settings(&db);
    settings.ui.base_domain = Some("localhost".into());
    settings.ui.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    let app = spawn_app_with(settings).await;
    let mut proxied = Browser::new(&app);
    let page = proxied
        .get_with("/login", &[("x-forwarded-host", "alpha.localhost")])
        .await;
    assert!(page.html.contains("Log in to alpha"), "{}", page.html);
    app.stop().await;
}

#[tokio::test]
async fn the_gateway_page_shows_the_revision_and_offers_the_config_redacted() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    operator_user(&app, "op@example.com").await;
    let tenant = app.create_tenant("Acme").await;
    let id = tenant["id"].as_str().unwrap();
    let token = "987654:AAgateway-page-secret";
    let r = app
        .post(
            &format!("/tenants/{id}/channels"),
            &serde_json::json!({"channel": "telegram", "credentials": {"botToken": token}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let served = app.get("/config").await;
    let etag = served.headers["etag"].to_str().unwrap().to_owned();
    assert!(served.text.contains(token), "inline for the gateway");

    let mut b = Browser::new(&app);
    b.log_in("", "op@example.com").await;
    let page = b.get("/admin/gateway").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("valid"));
    assert!(
        page.html.contains(&etag.replace('"', "&quot;")),
        "{}",
        page.html
    );
    assert!(!page.html.contains(token), "the preview is redacted");
    assert!(
        page.html.contains("agent-"),
        "the preview shows the document"
    );
    let download = b.get("/admin/gateway/config.json").await;
    assert_eq!(download.status, StatusCode::OK);
    assert!(
        download.headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let doc: serde_json::Value = serde_json::from_str(&download.html).unwrap();
    assert!(doc.is_object());
    assert!(!download.html.contains(token));

    // Not for tenant users or anonymous visitors.
    let mut anonymous = Browser::new(&app);
    assert_eq!(
        anonymous.get("/admin/gateway/config.json").await.status,
        StatusCode::SEE_OTHER
    );
    app.stop().await;
}

#[tokio::test]
async fn the_tenant_api_on_a_tenant_host_is_that_tenants_only() {
    let db = TestDb::new();
    let mut settings = test_settings(&db);
    settings.ui.base_domain = Some("localhost".into());
    let app = spawn_app_with(settings).await;
    let alpha = app
        .create_tenant_with(&serde_json::json!({"name": "Alpha", "slug": "alpha"}))
        .await;
    let bravo = app
        .create_tenant_with(&serde_json::json!({"name": "Bravo", "slug": "bravo"}))
        .await;
    let (a_id, a_key) = (
        alpha["id"].as_str().unwrap(),
        alpha["apiKey"].as_str().unwrap(),
    );
    let b_id = bravo["id"].as_str().unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let call = |host: &str, token: &str, method: reqwest::Method, path: &str| {
        client
            .request(method, format!("{}{path}", app.address))
            .header("host", format!("{host}:{}", app.port))
            .bearer_auth(token)
    };
    use reqwest::Method;

    // `/tenant/…` is the host's tenant.
    let r = call("alpha.localhost", a_key, Method::POST, "/tenant/channels")
        .json(&serde_json::json!({"channel": "telegram"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = call(
        "alpha.localhost",
        a_key,
        Method::GET,
        "/tenant/channels?x=1",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the query survives the rewrite");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["channels"][0]["channel"], "telegram");
    let r = call("alpha.localhost", a_key, Method::GET, "/tenant")
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["id"], a_id);
    // The long form works for the host's tenant only, whoever asks.
    let r = call(
        "alpha.localhost",
        a_key,
        Method::GET,
        &format!("/tenants/{a_id}/channels"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = call(
        "alpha.localhost",
        &app.operator_token,
        Method::GET,
        &format!("/tenants/{b_id}/channels"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Another tenant's credential on this host: not found, as everywhere.
    let r = call("bravo.localhost", a_key, Method::GET, "/tenant/channels")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    // An unknown host, and the apex (no tenant there).
    let r = call("nobody.localhost", a_key, Method::GET, "/tenant/channels")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = call("localhost", a_key, Method::GET, "/tenant/channels")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Unscoped routes answer as on any host.
    let r = call(
        "alpha.localhost",
        &app.operator_token,
        Method::GET,
        "/tenants",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    app.stop().await;
}
