//! `GET /config` and `GET /tenants/{id}/config` through a real server: who may read them, what
//! they hold, their `ETag`s and `x-config-revision`, and how a change made through one replica
//! reaches another.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};

use moltbot_saas_tests::{TestApp, TestDb, TestResponse, spawn_app, spawn_app_with, test_settings};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const TELEGRAM_TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
const OTHER_TELEGRAM_TOKEN: &str = "987654321:ZZyXwvUT9s8r7q6p5o4n3m2l1k0jihgfed";

/// A tenant as created: its id, agent id and account id.
struct Created {
    id: String,
    agent: String,
    account: String,
}

async fn tenant(app: &TestApp, name: &str) -> Created {
    let body = app.create_tenant(name).await;
    Created {
        id: body["id"].as_str().unwrap().to_owned(),
        agent: body["agentId"].as_str().unwrap().to_owned(),
        account: body["accountId"].as_str().unwrap().to_owned(),
    }
}

async fn add_channel(app: &TestApp, tenant: &Created, body: &Value) {
    let r = app
        .post(&format!("/tenants/{}/channels", tenant.id), body)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

async fn add_telegram(app: &TestApp, tenant: &Created, token: &str) {
    add_channel(
        app,
        tenant,
        &json!({"channel": "telegram", "credentials": {"botToken": token}}),
    )
    .await;
}

/// `GET path` with `token` and, when given, `If-None-Match`.
async fn get_with(
    app: &TestApp,
    token: Option<&str>,
    path: &str,
    if_none_match: Option<&str>,
) -> TestResponse {
    let mut req = app.client.get(format!("{}{path}", app.address));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(tag) = if_none_match {
        req = req.header("if-none-match", tag);
    }
    let resp = req.send().await.expect("request failed");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("body failed");
    TestResponse {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// `GET path` as the gateway, expecting 200; returns the response.
async fn gateway_get(app: &TestApp, path: &str) -> TestResponse {
    let r = get_with(app, Some(&app.gateway_token), path, None).await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
    assert!(r.body.is_object(), "{path}: not a JSON object: {}", r.text);
    r
}

fn etag(r: &TestResponse) -> String {
    r.headers
        .get("etag")
        .unwrap_or_else(|| panic!("no ETag: {:?}", r.headers))
        .to_str()
        .unwrap()
        .to_owned()
}

fn revision(r: &TestResponse) -> i64 {
    r.headers
        .get("x-config-revision")
        .unwrap_or_else(|| panic!("no x-config-revision: {:?}", r.headers))
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// The agent ids of a current-dialect document.
fn agents(doc: &Value) -> Vec<String> {
    doc["agents"]["entries"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn bindings(doc: &Value) -> Vec<Value> {
    doc["bindings"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn config_is_read_with_the_gateway_or_operator_token_only() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let acme = tenant(&app, "Acme").await;

    for token in [&app.gateway_token, &app.operator_token] {
        let r = get_with(&app, Some(token), "/config", None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{:?}",
            r.headers
        );
        assert!(agents(&r.body).contains(&acme.agent), "{}", r.text);
        let r = get_with(
            &app,
            Some(token),
            &format!("/tenants/{}/config", acme.id),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(agents(&r.body), [acme.agent.as_str()]);
    }

    // No token, or one the server does not know.
    get_with(&app, None, "/config", None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    let r = get_with(
        &app,
        Some("not-a-token-the-server-knows-0123456789abcdef"),
        "/config",
        None,
    )
    .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(!r.text.contains(&acme.agent));
    get_with(&app, None, &format!("/tenants/{}/config", acme.id), None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");

    // The gateway token reads configs and nothing else (elsewhere it is no credential: 401),
    // and changes nothing.
    let before = db.row_counts();
    let gw = Some(app.gateway_token.as_str());
    let t = format!("/tenants/{}", acme.id);
    let forbidden = [
        (Method::GET, "/tenants".to_owned(), None),
        (
            Method::POST,
            "/tenants".to_owned(),
            Some(json!({"name": "Evil"})),
        ),
        (Method::GET, t.clone(), None),
        (
            Method::PATCH,
            t.clone(),
            Some(json!({"status": "suspended"})),
        ),
        (Method::DELETE, t.clone(), None),
        (Method::GET, format!("{t}/channels"), None),
        (
            Method::POST,
            format!("{t}/channels"),
            Some(json!({"channel": "telegram"})),
        ),
        (Method::POST, "/config".to_owned(), Some(json!({}))),
        (Method::PUT, format!("{t}/config"), Some(json!({}))),
        (Method::DELETE, format!("{t}/config"), None),
        (Method::GET, format!("{t}/channels/config"), None),
    ];
    for (method, path, body) in forbidden {
        let r = app
            .request_as(gw, method.clone(), &path, body.as_ref())
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path}: {}",
            r.text
        );
        r.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    assert_eq!(db.row_counts(), before, "the gateway token wrote nothing");
    let r = app.get(&t).await;
    assert_eq!(r.body["status"], "active", "{}", r.text);
}

#[tokio::test]
async fn combined_config_holds_the_served_channels_of_active_tenants() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let acme = tenant(&app, "Acme Corp").await;
    let globex = tenant(&app, "Globex").await;
    let quiet = tenant(&app, "Quiet").await;

    add_telegram(&app, &acme, TELEGRAM_TOKEN).await;
    // Awaiting credentials: not served.
    add_channel(&app, &acme, &json!({"channel": "discord"})).await;
    // Complete credentials, but switched off: not served.
    add_channel(
        &app,
        &acme,
        &json!({
            "channel": "slack",
            "enabled": false,
            "credentials": {"mode": "socket", "botToken": "xoxb-1-disabledslacktoken", "appToken": "xapp-1-disabledapptoken"}
        }),
    )
    .await;
    add_telegram(&app, &globex, OTHER_TELEGRAM_TOKEN).await;
    // Quiet has a disabled channel only.
    add_channel(
        &app,
        &quiet,
        &json!({"channel": "telegram", "enabled": false, "credentials": {"botToken": "555:quiet-disabled-token-value"}}),
    )
    .await;

    let doc = gateway_get(&app, "/config").await.body;
    let mut expected_agents = vec![
        acme.agent.clone(),
        globex.agent.clone(),
        quiet.agent.clone(),
    ];
    expected_agents.sort();
    assert_eq!(
        agents(&doc),
        expected_agents,
        "every active tenant has its agent"
    );
    let entry = &doc["agents"]["entries"][&acme.agent];
    assert_eq!(entry["name"], "Acme Corp", "{doc:#}");
    assert!(
        entry["workspace"].as_str().unwrap().ends_with(&acme.agent),
        "{entry}"
    );
    assert_eq!(doc["agents"]["ownership"], "explicit");
    assert!(doc["agents"].get("list").is_none(), "{doc:#}");

    // Bindings: one per served channel, none for the others.
    let all = bindings(&doc);
    let binding = |t: &Created| json!({"agentId": t.agent, "match": {"channel": "telegram", "accountId": t.account}});
    assert!(all.contains(&binding(&acme)), "{doc:#}");
    assert!(all.contains(&binding(&globex)), "{doc:#}");
    assert_eq!(all.len(), 2, "only the two served channels: {doc:#}");
    assert!(
        !all.iter().any(|b| b["agentId"] == quiet.agent.as_str()),
        "{doc:#}"
    );

    // Accounts with their credentials.
    let accounts = doc["channels"]["telegram"]["accounts"].as_object().unwrap();
    assert_eq!(accounts[&acme.account]["botToken"], TELEGRAM_TOKEN);
    assert_eq!(accounts[&globex.account]["botToken"], OTHER_TELEGRAM_TOKEN);
    assert!(!accounts.contains_key(&quiet.account), "{doc:#}");
    assert_eq!(accounts.len(), 2);
    assert!(
        doc["channels"]
            .get("discord")
            .is_none_or(|d| d["accounts"].get(&acme.account).is_none()),
        "awaiting credentials is left out: {doc:#}"
    );
    assert!(
        doc["channels"]
            .get("slack")
            .is_none_or(|d| d["accounts"].get(&acme.account).is_none()),
        "disabled is left out: {doc:#}"
    );
    let text = gateway_get(&app, "/config").await.text;
    assert!(!text.contains("disabledslacktoken"), "{text}");
    assert!(!text.contains("quiet-disabled-token-value"), "{text}");

    // A suspended tenant leaves the document entirely; reactivated, it comes back.
    let r = app
        .patch(
            &format!("/tenants/{}", globex.id),
            &json!({"status": "suspended"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = gateway_get(&app, "/config").await;
    assert!(!agents(&r.body).contains(&globex.agent), "{}", r.text);
    assert!(!r.text.contains(&globex.account), "{}", r.text);
    assert!(!r.text.contains(OTHER_TELEGRAM_TOKEN), "{}", r.text);
    assert!(agents(&r.body).contains(&acme.agent));
    assert_eq!(bindings(&r.body), [binding(&acme)]);
    let r = app
        .patch(
            &format!("/tenants/{}", globex.id),
            &json!({"status": "active"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = gateway_get(&app, "/config").await;
    assert!(bindings(&r.body).contains(&binding(&globex)), "{}", r.text);
}

#[tokio::test]
async fn dialect_and_mode_select_the_document_shape() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let acme = tenant(&app, "Acme").await;
    let globex = tenant(&app, "Globex").await;
    add_telegram(&app, &acme, TELEGRAM_TOKEN).await;
    add_telegram(&app, &globex, OTHER_TELEGRAM_TOKEN).await;

    let current = gateway_get(&app, "/config?dialect=current").await;
    assert_eq!(
        current.text,
        gateway_get(&app, "/config").await.text,
        "current is the default"
    );

    let legacy = gateway_get(&app, "/config?dialect=legacy").await;
    let list = legacy.body["agents"]["list"]
        .as_array()
        .unwrap_or_else(|| panic!("agents.list: {}", legacy.text));
    let ids: HashSet<&str> = list.iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        HashSet::from([acme.agent.as_str(), globex.agent.as_str()])
    );
    assert!(
        legacy.body["agents"].get("entries").is_none(),
        "{}",
        legacy.text
    );
    assert_ne!(
        etag(&legacy),
        etag(&current),
        "each variant has its own tag"
    );
    assert_eq!(
        legacy.body["channels"]["telegram"]["accounts"][&acme.account]["botToken"],
        TELEGRAM_TOKEN
    );

    let per = gateway_get(&app, "/config?mode=per-tenant").await;
    let by_account = per.body.as_object().unwrap();
    let mut keys: Vec<&String> = by_account.keys().collect();
    keys.sort();
    let mut expected = vec![&acme.account, &globex.account];
    expected.sort();
    assert_eq!(keys, expected, "{}", per.text);
    // Compact and canonical like the combined document.
    assert_eq!(
        format!("{}\n", serde_json::to_string(&per.body).unwrap()),
        per.text
    );
    for t in [&acme, &globex] {
        let own = &by_account[&t.account];
        assert_eq!(agents(own), [t.agent.as_str()], "{own:#}");
        let accounts = own["channels"]["telegram"]["accounts"].as_object().unwrap();
        assert_eq!(accounts.keys().collect::<Vec<_>>(), [&t.account]);
    }
    // The combined document's `mode` spelled out is the default.
    assert_eq!(
        gateway_get(&app, "/config?mode=combined").await.text,
        current.text
    );
    let per_legacy = gateway_get(&app, "/config?mode=per-tenant&dialect=legacy").await;
    assert!(
        per_legacy.body[&acme.account]["agents"]["list"].is_array(),
        "{}",
        per_legacy.text
    );
}

#[tokio::test]
async fn bad_query_parameters_are_400() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let acme = tenant(&app, "Acme").await;
    let one = format!("/tenants/{}/config", acme.id);
    for (path, field) in [
        ("/config?dialect=modern".to_owned(), "dialect"),
        ("/config?dialect=Legacy".to_owned(), "dialect"),
        ("/config?dialect=".to_owned(), "dialect"),
        ("/config?mode=split".to_owned(), "mode"),
        ("/config?mode=per-tenant&dialect=x".to_owned(), "dialect"),
        (format!("{one}?dialect=modern"), "dialect"),
    ] {
        let r = get_with(&app, Some(&app.gateway_token), &path, None).await;
        r.assert_error(StatusCode::BAD_REQUEST, "invalid_query");
        assert_eq!(
            r.body["error"]["details"]["field"], field,
            "{path}: {}",
            r.text
        );
        assert!(r.error_message().contains(field), "{path}: {}", r.text);
    }
    for path in [
        "/config?secrets=inline".to_owned(),
        "/config?foo=1".to_owned(),
        format!("{one}?tenant=x"),
    ] {
        let r = get_with(&app, Some(&app.gateway_token), &path, None).await;
        r.assert_error(StatusCode::BAD_REQUEST, "invalid_query");
        let name = path.split_once('?').unwrap().1.split('=').next().unwrap();
        assert!(r.error_message().contains(name), "{path}: {}", r.text);
    }
}

#[tokio::test]
async fn etag_is_strong_and_answers_if_none_match() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let acme = tenant(&app, "Acme").await;
    add_telegram(&app, &acme, TELEGRAM_TOKEN).await;

    let first = gateway_get(&app, "/config").await;
    let tag = etag(&first);
    assert!(!tag.starts_with("W/"), "{tag}");
    assert!(
        tag.len() > 2 && tag.starts_with('"') && tag.ends_with('"'),
        "{tag}"
    );
    let inner = &tag[1..tag.len() - 1];
    assert!(!inner.is_empty() && !inner.contains('"'), "{tag}");
    let cache_control = first.headers["cache-control"].to_str().unwrap();
    assert!(cache_control.contains("no-cache"), "{cache_control}");

    // Nothing changed: same tag, same bytes, same revision.
    let second = gateway_get(&app, "/config").await;
    assert_eq!(etag(&second), tag);
    assert_eq!(second.text, first.text, "byte-identical");
    assert_eq!(revision(&second), revision(&first));
    // A canonical document: exactly its own compact printing with a final newline.
    assert_eq!(
        format!("{}\n", serde_json::to_string(&first.body).unwrap()),
        first.text
    );

    let gw = Some(app.gateway_token.as_str());
    for header in [
        tag.clone(),
        format!("W/{tag}"),
        format!("\"0000\", {tag}"),
        format!("\"0000\",{tag} , W/\"1111\""),
        "*".to_owned(),
    ] {
        let r = get_with(&app, gw, "/config", Some(&header)).await;
        assert_eq!(r.status, StatusCode::NOT_MODIFIED, "{header}: {}", r.text);
        assert!(r.text.is_empty(), "{header}: a 304 has no body: {}", r.text);
        assert_eq!(etag(&r), tag, "{header}");
        assert_eq!(revision(&r), revision(&first), "{header}");
    }
    for header in [
        "\"0000\"".to_owned(),
        format!("\"{inner}x\""),
        inner.to_owned(),
        format!("\"0000\", W/\"{inner}0\""),
    ] {
        let r = get_with(&app, gw, "/config", Some(&header)).await;
        assert_eq!(r.status, StatusCode::OK, "{header}: {}", r.text);
        assert_eq!(r.text, first.text, "{header}");
        assert_eq!(etag(&r), tag, "{header}");
    }

    // Each variant is matched against its own tag.
    let legacy = gateway_get(&app, "/config?dialect=legacy").await;
    let r = get_with(&app, gw, "/config?dialect=legacy", Some(&tag)).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the current tag is not the legacy one"
    );
    let r = get_with(&app, gw, "/config?dialect=legacy", Some(&etag(&legacy))).await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);

    // The per-tenant endpoint too.
    let path = format!("/tenants/{}/config", acme.id);
    let own = gateway_get(&app, &path).await;
    let own_tag = etag(&own);
    assert!(
        !own_tag.starts_with("W/") && own_tag.starts_with('"'),
        "{own_tag}"
    );
    let r = get_with(&app, gw, &path, Some(&own_tag)).await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED, "{}", r.text);
    assert!(r.text.is_empty());
    assert_eq!(etag(&r), own_tag);
    // Tags follow content: with one tenant, its own document is the combined one.
    assert_eq!(own.text, first.text);
    assert_eq!(own_tag, tag);
    let globex = tenant(&app, "Globex").await;
    let own = gateway_get(&app, &path).await;
    assert_eq!(
        etag(&own),
        own_tag,
        "another tenant does not change this one's document"
    );
    let r = get_with(&app, gw, &path, Some(&own_tag)).await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    let combined = gateway_get(&app, "/config").await;
    assert!(agents(&combined.body).contains(&globex.agent));
    assert_ne!(etag(&combined), tag);
    let r = get_with(&app, gw, &path, Some(&etag(&combined))).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the combined tag is not the tenant's"
    );
    assert_eq!(r.text, own.text, "byte-identical");
}

/// Reads `/config` after each change: checks that the tag differs from the last one and the
/// revision grew, and that tags follow content (a document seen before has its old tag back, a
/// new one has a tag never seen).
struct Tracker {
    tags_by_body: HashMap<String, String>,
    last_tag: String,
    last_revision: i64,
}

impl Tracker {
    async fn start(app: &TestApp) -> Self {
        let r = gateway_get(app, "/config").await;
        Self {
            tags_by_body: HashMap::from([(r.text.clone(), etag(&r))]),
            last_tag: etag(&r),
            last_revision: revision(&r),
        }
    }

    async fn changed(&mut self, app: &TestApp, what: &str) -> Value {
        let r = gateway_get(app, "/config").await;
        let tag = etag(&r);
        assert_ne!(tag, self.last_tag, "{what}: the ETag did not change");
        match self.tags_by_body.get(&r.text) {
            Some(earlier) => assert_eq!(&tag, earlier, "{what}: same document, same tag"),
            None => {
                assert!(
                    !self.tags_by_body.values().any(|t| *t == tag),
                    "{what}: a new document reuses a tag"
                );
                self.tags_by_body.insert(r.text.clone(), tag.clone());
            }
        }
        let rev = revision(&r);
        assert!(
            rev > self.last_revision,
            "{what}: revision {rev} after {}",
            self.last_revision
        );
        // The tag the gateway holds no longer matches.
        let stale = get_with(
            app,
            Some(&app.gateway_token),
            "/config",
            Some(&self.last_tag),
        )
        .await;
        assert_eq!(stale.status, StatusCode::OK, "{what}");
        assert_eq!(stale.text, r.text, "{what}");
        // But the new one does, and stays put while nothing changes.
        let fresh = get_with(app, Some(&app.gateway_token), "/config", Some(&tag)).await;
        assert_eq!(fresh.status, StatusCode::NOT_MODIFIED, "{what}");
        self.last_tag = tag;
        self.last_revision = rev;
        r.body
    }
}

#[tokio::test]
async fn every_change_changes_the_etag_and_raises_the_revision() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let mut tracker = Tracker::start(&app).await;

    let acme = tenant(&app, "Acme").await;
    let doc = tracker.changed(&app, "create tenant").await;
    assert!(agents(&doc).contains(&acme.agent));

    let r = app
        .patch(
            &format!("/tenants/{}", acme.id),
            &json!({"name": "Acme Renamed"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let doc = tracker.changed(&app, "rename tenant").await;
    assert_eq!(
        doc["agents"]["entries"][&acme.agent]["name"],
        "Acme Renamed"
    );

    add_telegram(&app, &acme, TELEGRAM_TOKEN).await;
    let doc = tracker.changed(&app, "add channel").await;
    assert_eq!(
        doc["channels"]["telegram"]["accounts"][&acme.account]["botToken"],
        TELEGRAM_TOKEN
    );

    let channel = format!("/tenants/{}/channels/telegram", acme.id);
    let r = app
        .patch(
            &channel,
            &json!({"credentials": {"botToken": OTHER_TELEGRAM_TOKEN}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let doc = tracker.changed(&app, "new credentials").await;
    assert_eq!(
        doc["channels"]["telegram"]["accounts"][&acme.account]["botToken"],
        OTHER_TELEGRAM_TOKEN
    );

    let r = app.patch(&channel, &json!({"enabled": false})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let doc = tracker.changed(&app, "disable channel").await;
    assert!(bindings(&doc).is_empty(), "{doc:#}");

    let r = app.patch(&channel, &json!({"enabled": true})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let doc = tracker.changed(&app, "enable channel").await;
    assert_eq!(bindings(&doc).len(), 1, "{doc:#}");

    let r = app
        .patch(
            &format!("/tenants/{}", acme.id),
            &json!({"status": "suspended"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let doc = tracker.changed(&app, "suspend").await;
    assert!(!agents(&doc).contains(&acme.agent));

    let r = app
        .patch(
            &format!("/tenants/{}", acme.id),
            &json!({"status": "active"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let doc = tracker.changed(&app, "reactivate").await;
    assert!(agents(&doc).contains(&acme.agent));

    assert_eq!(app.delete(&channel).await.status, StatusCode::NO_CONTENT);
    let doc = tracker.changed(&app, "delete channel").await;
    assert!(bindings(&doc).is_empty(), "{doc:#}");
    assert!(agents(&doc).contains(&acme.agent), "the agent stays");

    let globex = tenant(&app, "Globex").await;
    tracker.changed(&app, "create second tenant").await;
    assert_eq!(
        app.delete(&format!("/tenants/{}", acme.id)).await.status,
        StatusCode::NO_CONTENT
    );
    let doc = tracker.changed(&app, "delete tenant").await;
    assert_eq!(agents(&doc), [globex.agent.as_str()]);

    // The server tracks the revision the store keeps.
    let mut conn = db.connect();
    assert_eq!(
        tenant_store::config_revision::current(&mut conn).unwrap(),
        tracker.last_revision
    );
}

#[tokio::test]
async fn a_change_through_one_replica_reaches_another() {
    let db = TestDb::new();
    let settings = test_settings(&db);
    let a = spawn_app_with(settings.clone()).await;
    let b = spawn_app_with(settings).await;
    let acme = tenant(&a, "Acme").await;

    // B renders and caches; A and B agree byte for byte.
    let on_b = gateway_get(&b, "/config").await;
    let on_a = gateway_get(&a, "/config").await;
    assert_eq!(on_a.text, on_b.text);
    assert_eq!(etag(&on_a), etag(&on_b), "replicas give the same tag");
    assert_eq!(revision(&on_a), revision(&on_b));
    assert!(agents(&on_b.body).contains(&acme.agent));
    let cached = get_with(&b, Some(&b.gateway_token), "/config", Some(&etag(&on_b))).await;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);

    // A change through A: B sees it at once.
    add_telegram(&a, &acme, TELEGRAM_TOKEN).await;
    let r = get_with(&b, Some(&b.gateway_token), "/config", Some(&etag(&on_b))).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "B must not answer 304 from its cache"
    );
    assert_ne!(etag(&r), etag(&on_b));
    assert!(revision(&r) > revision(&on_b));
    assert_eq!(
        r.body["channels"]["telegram"]["accounts"][&acme.account]["botToken"], TELEGRAM_TOKEN,
        "{}",
        r.text
    );
    assert_eq!(etag(&gateway_get(&a, "/config").await), etag(&r));

    // Every variant B cached is refreshed, and so is the per-tenant endpoint.
    let legacy_before = gateway_get(&b, "/config?dialect=legacy").await;
    let r = a
        .patch(
            &format!("/tenants/{}", acme.id),
            &json!({"name": "Acme Two"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let legacy = gateway_get(&b, "/config?dialect=legacy").await;
    assert_ne!(etag(&legacy), etag(&legacy_before));
    assert!(legacy.text.contains("Acme Two"), "{}", legacy.text);
    let per = gateway_get(&b, "/config?mode=per-tenant").await;
    assert!(per.text.contains("Acme Two"), "{}", per.text);
    let own = gateway_get(&b, &format!("/tenants/{}/config", acme.id)).await;
    assert!(own.text.contains("Acme Two"), "{}", own.text);

    // Suspended through A: gone on B; deleted through B: gone on A.
    let r = a
        .patch(
            &format!("/tenants/{}", acme.id),
            &json!({"status": "suspended"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = gateway_get(&b, "/config").await;
    assert!(!agents(&r.body).contains(&acme.agent), "{}", r.text);
    let globex = tenant(&b, "Globex").await;
    assert!(agents(&gateway_get(&a, "/config").await.body).contains(&globex.agent));
    assert_eq!(
        b.delete(&format!("/tenants/{}", globex.id)).await.status,
        StatusCode::NO_CONTENT
    );
    let r = gateway_get(&a, "/config").await;
    assert!(!agents(&r.body).contains(&globex.agent), "{}", r.text);
    assert_eq!(r.text, gateway_get(&b, "/config").await.text);

    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn tenant_config_holds_only_that_tenant() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let acme = tenant(&app, "Acme").await;
    let globex = tenant(&app, "Globex").await;
    add_telegram(&app, &acme, TELEGRAM_TOKEN).await;
    add_telegram(&app, &globex, OTHER_TELEGRAM_TOKEN).await;

    let path = format!("/tenants/{}/config", acme.id);
    let own = gateway_get(&app, &path).await;
    assert_eq!(agents(&own.body), [acme.agent.as_str()]);
    assert_eq!(
        bindings(&own.body),
        [
            json!({"agentId": acme.agent, "match": {"channel": "telegram", "accountId": acme.account}})
        ]
    );
    assert_eq!(
        own.body["channels"]["telegram"]["accounts"][&acme.account]["botToken"],
        TELEGRAM_TOKEN
    );
    for other in [&globex.agent, &globex.account, &globex.id] {
        assert!(!own.text.contains(other.as_str()), "{other}: {}", own.text);
    }
    assert!(!own.text.contains(OTHER_TELEGRAM_TOKEN));
    // The same part as in the combined document.
    let combined = gateway_get(&app, "/config").await.body;
    assert_eq!(
        own.body["agents"]["entries"][&acme.agent],
        combined["agents"]["entries"][&acme.agent]
    );
    // `?mode` is not a parameter of this route (it is always one tenant); `?dialect` applies.
    let r = get_with(
        &app,
        Some(&app.gateway_token),
        &format!("{path}?mode=per-tenant"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("mode"), "{}", r.text);
    let legacy = gateway_get(&app, &format!("{path}?dialect=legacy")).await;
    assert_eq!(legacy.body["agents"]["list"][0]["id"], acme.agent.as_str());

    // A suspended tenant's document is valid but has no agent.
    let r = app
        .patch(
            &format!("/tenants/{}", acme.id),
            &json!({"status": "suspended"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let suspended = gateway_get(&app, &path).await;
    assert!(agents(&suspended.body).is_empty(), "{}", suspended.text);
    assert!(
        !suspended.text.contains(TELEGRAM_TOKEN),
        "{}",
        suspended.text
    );
    assert_ne!(etag(&suspended), etag(&own));

    // Unknown and malformed ids.
    let unknown = uuid::Uuid::new_v4();
    for token in [&app.gateway_token, &app.operator_token] {
        get_with(
            &app,
            Some(token),
            &format!("/tenants/{unknown}/config"),
            None,
        )
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
        for bad in ["not-a-uuid", "1234", &acme.account] {
            let r = get_with(&app, Some(token), &format!("/tenants/{bad}/config"), None).await;
            r.assert_error(StatusCode::BAD_REQUEST, "invalid_path");
            assert_eq!(r.body["error"]["details"]["field"], "id", "{}", r.text);
        }
    }
    // A deleted tenant is unknown.
    assert_eq!(
        app.delete(&format!("/tenants/{}", globex.id)).await.status,
        StatusCode::NO_CONTENT
    );
    get_with(
        &app,
        Some(&app.gateway_token),
        &format!("/tenants/{}/config", globex.id),
        None,
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");
}

/// A server whose default secrets mode is `secret-ref` cannot serve the legacy dialect (those
/// gateways reject SecretRef objects): asking for it fails with a message saying why, and leaves
/// the other variants working.
#[tokio::test]
async fn a_dialect_the_secrets_mode_cannot_serve_is_refused() {
    let db = TestDb::new();
    let mut settings = test_settings(&db);
    settings.render.secrets = "secret-ref".parse().unwrap();
    let app = spawn_app_with(settings).await;
    let acme = tenant(&app, "Acme").await;
    add_telegram(&app, &acme, TELEGRAM_TOKEN).await;
    let current = gateway_get(&app, "/config").await;
    assert!(!current.text.contains(TELEGRAM_TOKEN), "{}", current.text);
    assert!(
        current.body["channels"]["telegram"]["accounts"][&acme.account]["botToken"].is_object(),
        "a SecretRef object: {}",
        current.text
    );

    let gw = Some(app.gateway_token.as_str());
    for path in [
        "/config?dialect=legacy".to_owned(),
        "/config?dialect=legacy&mode=per-tenant".to_owned(),
        format!("/tenants/{}/config?dialect=legacy", acme.id),
    ] {
        let r = get_with(&app, gw, &path, None).await;
        // The query asks for something the configured secrets mode cannot be written in.
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.text);
        assert_eq!(r.error_code(), "invalid_query", "{path}: {}", r.text);
        assert_eq!(r.body["error"]["details"]["field"], "dialect", "{path}");
        for word in ["legacy", "secret-ref"] {
            assert!(r.error_message().contains(word), "{path}: {}", r.text);
        }
        assert!(!r.text.contains(TELEGRAM_TOKEN));
    }
    let again = gateway_get(&app, "/config").await;
    assert_eq!(again.text, current.text);
    assert_eq!(etag(&again), etag(&current));
}
