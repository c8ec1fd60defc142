//! `/openapi.json` describes exactly the routes the server serves.

use std::collections::BTreeSet;

use moltbot_saas_tests::{TestDb, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Every route the server serves (method, path template).
const ROUTES: &[(&str, &str)] = &[
    ("get", "/health"),
    ("get", "/ready"),
    ("get", "/openapi.json"),
    ("get", "/tenants"),
    ("post", "/tenants"),
    ("get", "/tenants/{id}"),
    ("patch", "/tenants/{id}"),
    ("delete", "/tenants/{id}"),
    ("get", "/tenants/{id}/export"),
    ("get", "/tenants/{id}/channels"),
    ("post", "/tenants/{id}/channels"),
    ("get", "/tenants/{id}/channels/{kind}"),
    ("patch", "/tenants/{id}/channels/{kind}"),
    ("delete", "/tenants/{id}/channels/{kind}"),
    ("get", "/config"),
    ("get", "/tenants/{id}/config"),
    ("get", "/gateways"),
    ("post", "/gateways"),
    ("get", "/gateways/{gid}"),
    ("patch", "/gateways/{gid}"),
    ("delete", "/gateways/{gid}"),
    ("post", "/gateways/{gid}/drain"),
    ("post", "/gateways/{gid}/rotate-token"),
    ("post", "/gateways/place-pending"),
    ("get", "/tenants/{id}/placement"),
    ("post", "/tenants/{id}/placement"),
    ("patch", "/tenants/{id}/placement"),
    ("post", "/gateway/heartbeat"),
    ("get", "/operator/webhooks"),
    ("post", "/operator/webhooks"),
    ("get", "/operator/webhooks/{oid}"),
    ("patch", "/operator/webhooks/{oid}"),
    ("delete", "/operator/webhooks/{oid}"),
    ("post", "/auth/login"),
    ("post", "/auth/refresh"),
    ("post", "/auth/logout"),
    ("post", "/auth/password"),
    ("post", "/auth/accept-invite"),
    ("get", "/tenants/{id}/users"),
    ("post", "/tenants/{id}/users"),
    ("get", "/tenants/{id}/users/{uid}"),
    ("patch", "/tenants/{id}/users/{uid}"),
    ("delete", "/tenants/{id}/users/{uid}"),
    ("get", "/operators"),
    ("post", "/operators"),
    ("get", "/tenants/{id}/api-keys"),
    ("post", "/tenants/{id}/api-keys"),
    ("delete", "/tenants/{id}/api-keys/{kid}"),
    ("post", "/tenants/{id}/api-keys/{kid}/rotate"),
    ("get", "/tenants/{id}/audit"),
    ("get", "/audit"),
    ("get", "/metrics"),
    ("get", "/me"),
    ("post", "/events"),
    ("post", "/webhooks/message"),
    ("get", "/tenants/{id}/sessions"),
    ("get", "/plans"),
    ("get", "/tenants/{id}/usage"),
    ("patch", "/tenants/{id}/limits"),
    ("get", "/tenants/{id}/billing"),
    ("post", "/tenants/{id}/billing/checkout"),
    ("post", "/tenants/{id}/billing/portal"),
    ("post", "/billing/stripe/webhook"),
    ("get", "/tenants/{id}/webhooks"),
    ("post", "/tenants/{id}/webhooks"),
    ("get", "/tenants/{id}/webhooks/{wid}"),
    ("patch", "/tenants/{id}/webhooks/{wid}"),
    ("delete", "/tenants/{id}/webhooks/{wid}"),
    ("post", "/tenants/{id}/webhooks/{wid}/rotate-secret"),
    ("post", "/tenants/{id}/webhooks/{wid}/test"),
    ("get", "/tenants/{id}/webhooks/{wid}/deliveries"),
    ("get", "/tenants/{id}/webhooks/{wid}/deliveries/{did}"),
    (
        "post",
        "/tenants/{id}/webhooks/{wid}/deliveries/{did}/replay",
    ),
];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

#[tokio::test]
async fn the_document_is_openapi_3_1_and_lists_every_route() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let r = app.get("/openapi.json").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let doc = r.body;
    let version = doc["openapi"].as_str().unwrap();
    assert!(version.starts_with("3.1."), "OpenAPI version {version}");

    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| METHODS.contains(&k.as_str()))
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(documented, served, "documented routes == served routes");

    // Exactly the creating POSTs take an Idempotency-Key (`/events` has event ids).
    let keyed: BTreeSet<&str> = documented
        .iter()
        .filter(|(method, path)| {
            doc["paths"][path][method]["parameters"]
                .as_array()
                .is_some_and(|ps| {
                    ps.iter()
                        .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header")
                })
        })
        .map(|(method, path)| {
            assert_eq!(method, "post", "{path}");
            path.as_str()
        })
        .collect();
    assert_eq!(
        keyed,
        BTreeSet::from([
            "/operators",
            "/tenants",
            "/tenants/{id}/api-keys",
            "/tenants/{id}/api-keys/{kid}/rotate",
            "/tenants/{id}/channels",
            "/tenants/{id}/users",
            "/tenants/{id}/webhooks",
            "/tenants/{id}/webhooks/{wid}/deliveries/{did}/replay",
            "/tenants/{id}/webhooks/{wid}/rotate-secret",
        ])
    );

    assert!(
        doc["components"]["schemas"]["ErrorBody"].is_object(),
        "the ErrorBody schema"
    );
    for scheme in ["operatorToken", "userJwt", "tenantApiKey", "gatewayToken"] {
        assert_eq!(
            doc["components"]["securitySchemes"][scheme]["scheme"], "bearer",
            "{scheme}"
        );
    }
    // Every documented error answer points at the ErrorBody schema.
    for (method, path) in &documented {
        let op = &doc["paths"][path][method];
        assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()));
        for (status, resp) in op["responses"].as_object().unwrap() {
            if status.starts_with('4') {
                assert_eq!(
                    resp["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
            }
        }
    }
}

#[tokio::test]
async fn every_documented_route_is_served() {
    let db = TestDb::new();
    // The dispatcher is off so the finished delivery below stays finished.
    let mut settings = moltbot_saas_tests::test_settings(&db);
    settings.webhooks.dispatcher = false;
    // Billing on, against a fake Stripe, so its routes answer too.
    let stripe = moltbot_saas_tests::FakeStripe::start().await;
    moltbot_saas_tests::stripe::enable_billing(&mut settings, &stripe.url);
    let app = moltbot_saas_tests::spawn_app_with(settings).await;
    let doc = app.get("/openapi.json").await.body;
    let tenant = app.create_tenant("Acme").await;
    let id = tenant["id"].as_str().unwrap().to_owned();
    let account = tenant["accountId"].clone();
    let hooks = format!("/tenants/{id}/webhooks");
    let r = app
        .post(&hooks, &json!({"url": "https://example.com/hook"}))
        .await;
    let wid = r.body["id"].as_str().unwrap().to_owned();
    let r = app.post(&format!("{hooks}/{wid}/test"), &json!({})).await;
    let did = r.body["deliveryId"].as_str().unwrap().to_owned();
    {
        use diesel::prelude::*;
        use tenant_store::schema::webhook_deliveries as d;
        let mut conn = db.connect();
        diesel::update(d::table.find(&did))
            .set(d::status.eq("failed"))
            .execute(&mut conn)
            .unwrap();
    }
    let r = app
        .post(
            &format!("/tenants/{id}/channels"),
            &json!({"channel": "telegram"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // Users for the user and login routes: one changes its password, one refreshes, logs out and
    // logs in, one is invited (then changed and deleted).
    let pw = crate::users_support::PASSWORD;
    let users = format!("/tenants/{id}/users");
    crate::users_support::create_user(&app, &id, "u1@acme.test", "owner").await;
    crate::users_support::create_user(&app, &id, "u2@acme.test", "member").await;
    let invited = app
        .post(&users, &json!({"email": "u3@acme.test", "role": "member"}))
        .await
        .body;
    let uid = invited["id"].as_str().unwrap().to_owned();
    let invite = invited["inviteToken"].as_str().unwrap().to_owned();
    let (a1, _) = crate::users_support::tokens(&app, Some(&id), "u1@acme.test").await;
    let (a2, r2) = crate::users_support::tokens(&app, Some(&id), "u2@acme.test").await;
    let kid = app
        .post(&format!("/tenants/{id}/api-keys"), &json!({"name": "ci"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Two gateways: `{gid}` is changed, drained, rotated and deleted; tenants move to the other.
    let gateway = |name: &'static str| {
        let app = &app;
        async move {
            let r = app
                .post("/gateways", &json!({"name": name, "capacity": 10}))
                .await;
            r.body["id"].as_str().unwrap().to_owned()
        }
    };
    let gid = gateway("served").await;
    let other_gid = gateway("other").await;
    let owid = {
        let r = app
            .post(
                "/operator/webhooks",
                &json!({"url": "https://example.com/ops"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.body["id"].as_str().unwrap().to_owned()
    };
    // Deletions last, so the other routes find their resources.
    let mut routes: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if METHODS.contains(&method.as_str()) {
                routes.push((method.clone(), path.clone()));
            }
        }
    }
    routes.sort_by_key(|(m, p)| (m == "delete", std::cmp::Reverse(p.len())));
    assert!(routes.len() >= ROUTES.len());
    for (method, template) in routes {
        let path = template
            .replace("{id}", &id)
            .replace("{kind}", "telegram")
            .replace("{uid}", &uid)
            .replace("{kid}", &kid)
            .replace("{wid}", &wid)
            .replace("{oid}", &owid)
            .replace("{did}", &did)
            .replace("{gid}", &gid);
        let token = match template.as_str() {
            "/auth/login" | "/auth/refresh" | "/auth/accept-invite" => None,
            "/gateway/heartbeat" => Some(app.gateway_token.as_str()),
            "/auth/logout" => Some(a2.as_str()),
            "/auth/password" => Some(a1.as_str()),
            _ => Some(app.operator_token.as_str()),
        };
        let body = match (method.as_str(), template.as_str()) {
            (_, "/auth/login") => {
                Some(json!({"tenant": id, "email": "u2@acme.test", "password": pw}))
            }
            (_, "/auth/refresh" | "/auth/logout") => Some(json!({"refreshToken": r2})),
            (_, "/auth/password") => {
                Some(json!({"currentPassword": pw, "newPassword": "another long passphrase"}))
            }
            (_, "/auth/accept-invite") => Some(json!({"token": invite, "password": pw})),
            ("post", "/tenants/{id}/users") => {
                Some(json!({"email": "u4@acme.test", "role": "admin"}))
            }
            ("patch", "/tenants/{id}/users/{uid}") => Some(json!({"role": "admin"})),
            ("post", "/operators") => Some(json!({"email": "ops@acme.test", "password": pw})),
            ("post", "/tenants") => Some(json!({"name": "Another"})),
            ("post", "/gateways") => Some(json!({"name": "another", "capacity": 1})),
            ("patch", "/gateways/{gid}") => Some(json!({"capacity": 5})),
            ("post", "/tenants/{id}/placement") => Some(json!({"gatewayId": other_gid})),
            ("patch", "/tenants/{id}/placement") => Some(json!({"dedicated": false})),
            ("post", "/gateway/heartbeat") => Some(json!({"etag": "\"x\""})),
            ("post", t) if t.contains("{gid}") || t == "/gateways/place-pending" => None,
            ("post", t) if t.ends_with("/api-keys") => Some(json!({"name": "another"})),
            ("post", t) if t.ends_with("/rotate") => Some(json!({})),
            ("post", "/events") => {
                Some(json!({"id": "e1", "type": "message.received", "accountId": account.clone()}))
            }
            ("post", "/webhooks/message") => {
                Some(json!({"tenantId": id, "channel": "telegram", "from": "u", "message": "m"}))
            }
            ("post", "/tenants/{id}/webhooks") => Some(json!({"url": "https://example.com/other"})),
            ("post", "/operator/webhooks") => Some(json!({"url": "https://example.com/ops2"})),
            ("patch", "/operator/webhooks/{oid}") => Some(json!({"enabled": true})),
            ("post", "/tenants/{id}/billing/checkout") => Some(json!({"plan": "pro",
                "successUrl": "https://example.com/ok", "cancelUrl": "https://example.com/no"})),
            ("post", "/tenants/{id}/billing/portal") => {
                Some(json!({"returnUrl": "https://example.com/back"}))
            }
            ("post", t) if t.contains("{wid}") => None,
            ("patch", "/tenants/{id}/webhooks/{wid}") => Some(json!({"enabled": true})),
            ("post", _) => Some(json!({"channel": "discord"})),
            ("patch", t) if t.ends_with("{kind}") => Some(json!({"enabled": false})),
            ("patch", _) => Some(json!({"plan": "pro"})),
            _ => None,
        };
        if template == "/billing/stripe/webhook" {
            // Authenticated by Stripe's signature, not a bearer token.
            let event = json!({"id": "evt_doc", "type": "customer.updated", "created": 1,
                               "data": {"object": {"id": "cus_x"}}})
            .to_string();
            let now = chrono::Utc::now().timestamp();
            let signature = moltbot_saas_tests::stripe::sign(
                event.as_bytes(),
                moltbot_saas_tests::stripe::STRIPE_WEBHOOK_SECRET,
                now,
            );
            let r = app
                .client
                .post(format!("{}{path}", app.address))
                .header("Stripe-Signature", signature)
                .body(event)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{path}: {}", r.status());
            continue;
        }
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let r = app.request_as(token, m, &path, body.as_ref()).await;
        assert!(
            r.status.is_success(),
            "{method} {path} is documented but answers {}: {}",
            r.status,
            r.text
        );
    }
}

/// The rules the server enforces are in the document: a generated client refuses what the server
/// would refuse.
#[tokio::test]
async fn the_document_states_the_rules() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let doc = app.get("/openapi.json").await.body;
    let op = &doc["paths"]["/tenants/{id}/users"]["get"];
    let param = |name: &str| {
        op["parameters"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == name))
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(param("id")["schema"]["format"], "uuid");
    assert_eq!(param("limit")["schema"]["minimum"], 1);
    assert_eq!(param("limit")["schema"]["maximum"], 500);
    for status in ["400", "401", "403", "404", "422", "429", "500", "503"] {
        assert!(
            op["responses"][status].is_object(),
            "GET users answers {status}"
        );
    }
    let schemas = &doc["components"]["schemas"];
    let create = &schemas["CreateTenantRequest"];
    assert_eq!(create["additionalProperties"], false);
    assert_eq!(create["properties"]["name"]["maxLength"], 200);
    assert_eq!(
        create["properties"]["plan"]["anyOf"][0]["enum"],
        json!(["free", "starter", "pro", "enterprise"])
    );
    assert_eq!(
        schemas["CreateChannelRequest"]["properties"]["channel"]["enum"],
        json!(["telegram", "discord", "slack", "whatsapp", "signal"])
    );
    assert_eq!(
        schemas["CreateUserRequest"]["properties"]["email"]["format"],
        "email"
    );
    assert_eq!(
        schemas["CreateUserRequest"]["properties"]["password"]["minLength"],
        12
    );
    // An audit entry's details can be null.
    assert_eq!(
        schemas["AuditEntryResponse"]["properties"]["details"]["type"],
        json!(["object", "null"])
    );
}

/// A known path asked with a method it does not take: 405 with `Allow` and the JSON error body,
/// for operators, tenant keys and public paths alike; an unknown path stays 404.
#[tokio::test]
async fn a_known_path_with_another_method_is_405_with_allow() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let tenant = app.create_tenant("Acme").await;
    let id = tenant["id"].as_str().unwrap().to_owned();
    let key = tenant["apiKey"].as_str().unwrap().to_owned();
    let path = format!("/tenants/{id}");
    for token in [Some(app.operator_token.as_str()), Some(key.as_str())] {
        let r = app.request_as(token, Method::PUT, &path, None).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{}", r.text);
        assert_eq!(r.headers["allow"], "DELETE, GET, PATCH");
        assert_eq!(r.body["error"]["code"], "method_not_allowed");
    }
    let r = app.request_as(None, Method::GET, "/auth/login", None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers["allow"], "POST");
    // A literal path beside a parameter's (`/gateways/place-pending`, `/gateways/{gid}`) is its
    // own resource: its other methods are 405, not a request about a gateway of that name.
    for method in [Method::PATCH, Method::GET, Method::DELETE] {
        let r = app
            .request_as(
                Some(&app.operator_token),
                method.clone(),
                "/gateways/place-pending",
                None,
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method}: {}",
            r.text
        );
        assert_eq!(r.headers["allow"], "POST");
    }
    // Without a credential a protected path is 401 first, whatever the method.
    let r = app.request_as(None, Method::PUT, &path, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app
        .request_as(
            Some(&app.operator_token),
            Method::GET,
            "/no/such/path",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
