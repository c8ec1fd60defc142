//! Stripe billing through a real server and a fake Stripe on 127.0.0.1 (issue 16): customers,
//! Checkout, the portal, Stripe's failures, signed webhooks applied once, out-of-order events,
//! and entitlements — plan and limits, grace, suspension out of the gateway config, restoration
//! — on whichever backend the suite runs on. The events are signed by the official `stripe`
//! library when the CI step sets `STRIPE_SIGNER`, else by the project's helper.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use moltbot_saas_tests::stripe::{STRIPE_WEBHOOK_SECRET, enable_billing, events, sign};
use moltbot_saas_tests::{
    FakeStripe, TestApp, TestDb, TestResponse, WebhookReceiver, spawn_app, spawn_app_with,
    test_settings,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::limits::{eventually, telegram_accounts};

const WEBHOOK: &str = "/billing/stripe/webhook";
const DAY: i64 = 86_400;

async fn app(db: &TestDb, fake: &FakeStripe) -> TestApp {
    let mut settings = test_settings(db);
    enable_billing(&mut settings, &fake.url);
    settings.webhooks.allowed_networks = vec!["127.0.0.1/32".parse().unwrap()];
    settings.webhooks.poll_interval = Duration::from_millis(50);
    spawn_app_with(settings).await
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Posts `body` to the webhook with this `Stripe-Signature` (no bearer token).
async fn post_signed(app: &TestApp, body: &[u8], signature: Option<&str>) -> TestResponse {
    // A connection of its own: signing with the stripe library (a process) may take longer than
    // the server keeps an idle connection open, and a reused one closing under the request
    // would fail it.
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut req = client
        .post(format!("{}{WEBHOOK}", app.address))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(s) = signature {
        req = req.header("Stripe-Signature", s);
    }
    TestApp::into_test_response(req.send().await.unwrap()).await
}

/// Sends an event signed now with the test secret; returns the answer's `outcome`.
async fn send(app: &TestApp, event: &Value) -> String {
    let body = event.to_string();
    let header = sign(body.as_bytes(), STRIPE_WEBHOOK_SECRET, now());
    let r = post_signed(app, body.as_bytes(), Some(&header)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["outcome"].as_str().unwrap().to_owned()
}

async fn billing(app: &TestApp, tenant: &str) -> Value {
    let r = app.get(&format!("/tenants/{tenant}/billing")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}

async fn audit_actions(app: &TestApp, tenant: &str) -> Vec<String> {
    let r = app.get(&format!("/tenants/{tenant}/audit?limit=100")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

fn checkout_body(plan: &str) -> Value {
    json!({"plan": plan, "successUrl": "https://app.example.com/billing/done",
           "cancelUrl": "https://app.example.com/billing"})
}

/// A tenant subscribed to `pro` through Checkout against the fake: the session is created, then
/// the events Stripe sends on completion are delivered. Returns (customer, subscription).
async fn subscribe(
    app: &TestApp,
    fake: &FakeStripe,
    tenant: &str,
    created: i64,
) -> (String, String) {
    let r = app
        .post(
            &format!("/tenants/{tenant}/billing/checkout"),
            &checkout_body("pro"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let session = fake.session(r.body["id"].as_str().unwrap());
    let customer = session["customer"].as_str().unwrap().to_owned();
    let sub = format!("sub_{}", &tenant[..8]);
    let period_end = created + 30 * DAY;
    let sub_obj = events::subscription(
        &sub,
        &customer,
        tenant,
        "active",
        "price_pro_m",
        created,
        period_end,
    );
    for e in [
        events::event(
            &format!("evt_co_{sub}"),
            "checkout.session.completed",
            created,
            events::checkout_completed(session["id"].as_str().unwrap(), &customer, tenant, &sub),
        ),
        events::event(
            &format!("evt_sc_{sub}"),
            "customer.subscription.created",
            created,
            sub_obj,
        ),
        events::event(
            &format!("evt_ip_{sub}"),
            "invoice.paid",
            created,
            events::invoice(&format!("in_first_{sub}"), &customer, &sub, true),
        ),
    ] {
        assert_eq!(send(app, &e).await, "applied", "{e}");
    }
    (customer, sub)
}

#[tokio::test]
async fn without_a_key_every_billing_route_is_503_billing_disabled() {
    let db = TestDb::new();
    let app = spawn_app(&db).await;
    let tenant = app.create_tenant("No Billing").await;
    let id = tenant["id"].as_str().unwrap();
    let before = db.row_counts();
    for r in [
        app.get(&format!("/tenants/{id}/billing")).await,
        app.post(
            &format!("/tenants/{id}/billing/checkout"),
            &checkout_body("pro"),
        )
        .await,
        app.post(
            &format!("/tenants/{id}/billing/portal"),
            &json!({"returnUrl": "https://app.example.com"}),
        )
        .await,
        post_signed(&app, b"{}", Some("t=1,v1=00")).await,
    ] {
        r.assert_error(StatusCode::SERVICE_UNAVAILABLE, "billing_disabled");
        assert!(r.headers.contains_key("retry-after"), "{:?}", r.headers);
    }
    assert_eq!(db.row_counts(), before, "nothing written");
    // Nothing else changes.
    assert_eq!(
        app.get(&format!("/tenants/{id}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get(&format!("/tenants/{id}/usage")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn checkout_creates_one_customer_per_tenant_and_a_subscription_session() {
    let db = TestDb::new();
    let fake = FakeStripe::start().await;
    let app = app(&db, &fake).await;
    let tenant = app.create_tenant("Checkout Co").await;
    let id = tenant["id"].as_str().unwrap();
    assert_eq!(billing(&app, id).await["state"], "none");

    let r = app
        .post(
            &format!("/tenants/{id}/billing/checkout"),
            &checkout_body("pro"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.body["url"]
            .as_str()
            .unwrap()
            .starts_with("https://checkout.stripe.test/")
    );
    let customers = fake.calls_to("/v1/customers");
    assert_eq!(customers.len(), 1);
    assert_eq!(
        customers[0].idempotency_key.as_deref(),
        Some(format!("moltbot-saas-customer-{id}").as_str())
    );
    assert_eq!(customers[0].form["metadata[tenant_id]"], id);
    assert_eq!(customers[0].form["name"], "Checkout Co");
    let session = &fake.calls_to("/v1/checkout/sessions")[0].form;
    assert_eq!(session["mode"], "subscription");
    assert_eq!(session["client_reference_id"], id);
    assert_eq!(
        session["line_items[0][price]"], "price_pro_m",
        "a plan's first price"
    );
    assert_eq!(session["subscription_data[metadata][tenant_id]"], id);
    assert_eq!(
        session["success_url"],
        "https://app.example.com/billing/done"
    );
    let session_customer = fake.session(r.body["id"].as_str().unwrap())["customer"].clone();
    assert_eq!(billing(&app, id).await["customerId"], session_customer);

    // A second Checkout reuses the stored customer.
    let r = app
        .post(
            &format!("/tenants/{id}/billing/checkout"),
            &checkout_body("starter"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(fake.calls_to("/v1/customers").len(), 1);
    assert_eq!(
        fake.calls_to("/v1/checkout/sessions")[1].form["line_items[0][price]"],
        "price_starter_m"
    );
    assert_eq!(fake.customer_count(), 1);
    let actions = audit_actions(&app, id).await;
    for a in ["billing.customer_created", "billing.checkout_created"] {
        assert!(actions.contains(&a.to_owned()), "{actions:?}");
    }
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "billing.checkout_created")
            .count(),
        2
    );
}

#[tokio::test]
async fn checkout_input_is_validated_and_the_roles_are_the_matrix() {
    let db = TestDb::new();
    let fake = FakeStripe::start().await;
    let app = app(&db, &fake).await;
    let tenant = app.create_tenant("Rules").await;
    let id = tenant["id"].as_str().unwrap();
    let path = format!("/tenants/{id}/billing/checkout");
    let r = app
        .post(
            &path,
            &json!({"plan": "gold", "successUrl": "ftp://x", "cancelUrl": ""}),
        )
        .await;
    r.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.invalid_fields(), ["plan", "successUrl", "cancelUrl"]);
    let r = app.post(&path, &checkout_body("free")).await;
    r.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.invalid_fields(), ["plan"]);
    assert!(r.text.contains("starter, pro"), "{}", r.text);
    let r = app.post(&path, &json!({"plan": "pro"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = app
        .post(
            &format!("/tenants/{id}/billing/portal"),
            &json!({"returnUrl": "not a url"}),
        )
        .await;
    assert_eq!(r.invalid_fields(), ["returnUrl"]);
    assert!(fake.calls().is_empty(), "nothing reached Stripe");

    // Owners and admins may pay, members only look.
    let owner = tenant["apiKey"].as_str().unwrap();
    let key = |role: &'static str| {
        let app = &app;
        async move {
            let r = app
                .post(
                    &format!("/tenants/{id}/api-keys"),
                    &json!({"name": role, "role": role}),
                )
                .await;
            r.body["apiKey"].as_str().unwrap().to_owned()
        }
    };
    let (admin, member) = (key("admin").await, key("member").await);
    let portal = json!({"returnUrl": "https://app.example.com/settings"});
    for (token, status) in [
        (owner.to_owned(), StatusCode::OK),
        (admin, StatusCode::OK),
        (member.clone(), StatusCode::FORBIDDEN),
    ] {
        let r = app
            .request_as(
                Some(&token),
                Method::POST,
                &format!("/tenants/{id}/billing/portal"),
                Some(&portal),
            )
            .await;
        assert_eq!(r.status, status, "{}", r.text);
    }
    let r = app
        .request_as(
            Some(&member),
            Method::GET,
            &format!("/tenants/{id}/billing"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Another tenant's credential sees nothing.
    let other = app.create_tenant("Other").await;
    let r = app
        .request_as(
            other["apiKey"].as_str(),
            Method::POST,
            &format!("/tenants/{id}/billing/portal"),
            Some(&portal),
        )
        .await;
    r.assert_error(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(fake.calls_to("/v1/billing_portal/sessions").len(), 2);
    assert_eq!(fake.customer_count(), 1, "one customer for the tenant");
    let actions = audit_actions(&app, id).await;
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "billing.portal_created")
            .count(),
        2
    );
}

#[tokio::test]
async fn stripe_failures_are_503_with_retry_after_and_nothing_half_written() {
    let db = TestDb::new();
    let fake = FakeStripe::start().await;
    let app = app(&db, &fake).await;
    let tenant = app.create_tenant("Flaky").await;
    let id = tenant["id"].as_str().unwrap();
    let path = format!("/tenants/{id}/billing/checkout");

    // Stripe down: 503, its Retry-After, no customer stored, no audit entry.
    fake.fail_next("/v1/customers", 503);
    let before = db.row_counts();
    let r = app.post(&path, &checkout_body("pro")).await;
    r.assert_error(StatusCode::SERVICE_UNAVAILABLE, "billing_unavailable");
    assert_eq!(r.headers["retry-after"], "7");
    assert_eq!(db.row_counts(), before);
    assert_eq!(billing(&app, id).await["customerId"], Value::Null);

    // The customer was made but the answer lost: the retry's idempotency key gets the same one.
    fake.lose_next_answer("/v1/customers", 500);
    let r = app.post(&path, &checkout_body("pro")).await;
    r.assert_error(StatusCode::SERVICE_UNAVAILABLE, "billing_unavailable");
    assert_eq!(billing(&app, id).await["customerId"], Value::Null);
    let r = app.post(&path, &checkout_body("pro")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        fake.customer_count(),
        1,
        "the retry made no second customer"
    );
    let keys: Vec<_> = fake
        .calls_to("/v1/customers")
        .into_iter()
        .map(|c| c.idempotency_key)
        .collect();
    assert_eq!(keys.len(), 3);
    assert!(keys.windows(2).all(|w| w[0] == w[1]), "{keys:?}");

    // The session fails: 503, no checkout audited (the customer, which exists, stays stored).
    fake.fail_next("/v1/checkout/sessions", 503);
    let r = app.post(&path, &checkout_body("starter")).await;
    r.assert_error(StatusCode::SERVICE_UNAVAILABLE, "billing_unavailable");
    let actions = audit_actions(&app, id).await;
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "billing.checkout_created")
            .count(),
        1
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "billing.customer_created")
            .count(),
        1
    );

    // A request Stripe refuses is the operator's to fix: 502, the cause not shown.
    fake.fail_next("/v1/billing_portal/sessions", 400);
    let r = app
        .post(
            &format!("/tenants/{id}/billing/portal"),
            &json!({"returnUrl": "https://a.example.com"}),
        )
        .await;
    r.assert_error(StatusCode::BAD_GATEWAY, "billing_refused");

    // Stripe unreachable: 503 with Retry-After.
    fake.stop().await;
    let r = app
        .post(
            &format!("/tenants/{id}/billing/portal"),
            &json!({"returnUrl": "https://a.example.com"}),
        )
        .await;
    r.assert_error(StatusCode::SERVICE_UNAVAILABLE, "billing_unavailable");
    assert!(r.headers.contains_key("retry-after"));
    assert!(
        !moltbot_saas_tests::captured_logs().contains("sk_test_fake"),
        "the key is never logged"
    );
}

/// `SAAS_STRIPE_TIMEOUT_MS` in the stall tests.
const STRIPE_TIMEOUT: Duration = Duration::from_millis(800);
/// How long an answer may take when Stripe stalls: the timeout, plus generous room for a loaded
/// machine. A server that waited on Stripe would take forever.
const STALL_BOUND: Duration = Duration::from_secs(15);

/// A request that must be answered within [`STALL_BOUND`] though Stripe stalls: 503
/// `billing_unavailable` with a `Retry-After` in seconds.
async fn unavailable_in_time(app: &TestApp, path: &str, body: &Value) {
    let started = std::time::Instant::now();
    let r = tokio::time::timeout(STALL_BOUND, app.post(path, body))
        .await
        .unwrap_or_else(|_| panic!("{path}: no answer within {STALL_BOUND:?}"));
    let took = started.elapsed();
    r.assert_error(StatusCode::SERVICE_UNAVAILABLE, "billing_unavailable");
    let retry_after: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry_after), "{retry_after}");
    assert!(
        took >= STRIPE_TIMEOUT,
        "{path}: answered in {took:?}, before the timeout"
    );
}

#[tokio::test]
async fn a_stripe_that_hangs_or_answers_late_is_503_within_the_timeout_and_recovers_by_itself() {
    let db = TestDb::new();
    let fake = FakeStripe::start().await;
    let mut settings = test_settings(&db);
    enable_billing(&mut settings, &fake.url);
    settings.billing.config.as_mut().unwrap().timeout = STRIPE_TIMEOUT;
    let app = spawn_app_with(settings).await;
    let tenant = app.create_tenant("Stalled").await;
    let id = tenant["id"].as_str().unwrap();
    let checkout = format!("/tenants/{id}/billing/checkout");
    let portal = format!("/tenants/{id}/billing/portal");
    let return_url = json!({"returnUrl": "https://app.example.com/billing"});
    let count = |actions: &[String], action: &str| actions.iter().filter(|a| *a == action).count();

    // Stripe accepts the connection and never answers: 503 in time, nothing stored.
    fake.hang("/v1/customers");
    let before = db.row_counts();
    unavailable_in_time(&app, &checkout, &checkout_body("pro")).await;
    unavailable_in_time(&app, &portal, &return_url).await;
    assert_eq!(db.row_counts(), before, "nothing written");
    assert_eq!(billing(&app, id).await["customerId"], Value::Null);
    assert_eq!(fake.calls_to("/v1/customers").len(), 2, "Stripe was called");

    // Stripe answers, but later than the timeout: the same, though Stripe made the customer.
    fake.answer_late("/v1/customers", STRIPE_TIMEOUT * 3);
    unavailable_in_time(&app, &checkout, &checkout_body("pro")).await;
    assert_eq!(db.row_counts(), before, "nothing written");
    assert_eq!(billing(&app, id).await["customerId"], Value::Null);

    // Stripe answers again: the next request works, with no restart and the customer Stripe
    // made late (the same idempotency key), stored once.
    fake.answer_promptly();
    let r = app.post(&checkout, &checkout_body("pro")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        fake.customer_count(),
        1,
        "the retry reused the idempotency key"
    );
    let customer = billing(&app, id).await["customerId"].clone();
    assert!(
        customer.as_str().is_some_and(|c| c.starts_with("cus_")),
        "{customer}"
    );

    // With the customer stored, the session calls stall: 503 in time, nothing audited.
    fake.hang("/v1/checkout/sessions");
    fake.answer_late("/v1/billing_portal/sessions", STRIPE_TIMEOUT * 3);
    let before = db.row_counts();
    unavailable_in_time(&app, &checkout, &checkout_body("starter")).await;
    unavailable_in_time(&app, &portal, &return_url).await;
    assert_eq!(db.row_counts(), before, "nothing written");
    let actions = audit_actions(&app, id).await;
    assert_eq!(
        count(&actions, "billing.customer_created"),
        1,
        "{actions:?}"
    );
    assert_eq!(
        count(&actions, "billing.checkout_created"),
        1,
        "{actions:?}"
    );
    assert_eq!(count(&actions, "billing.portal_created"), 0, "{actions:?}");

    // And recovers by itself once Stripe answers.
    fake.answer_promptly();
    let r = app.post(&checkout, &checkout_body("starter")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.post(&portal, &return_url).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let actions = audit_actions(&app, id).await;
    assert_eq!(
        count(&actions, "billing.checkout_created"),
        2,
        "{actions:?}"
    );
    assert_eq!(count(&actions, "billing.portal_created"), 1, "{actions:?}");
    assert_eq!(billing(&app, id).await["customerId"], customer);
    assert_eq!(fake.customer_count(), 1);
}

#[tokio::test]
async fn a_tenant_goes_from_free_to_paid_through_checkout_and_its_limits_follow() {
    let db = TestDb::new();
    let fake = FakeStripe::start().await;
    let app = app(&db, &fake).await;
    let tenant = app.create_tenant("Upgrade").await;
    let id = tenant["id"].as_str().unwrap();
    let free = app.get(&format!("/tenants/{id}/usage")).await.body;
    assert_eq!(free["plan"], "free");

    let t = now();
    let (customer, sub) = subscribe(&app, &fake, id, t).await;
    let b = billing(&app, id).await;
    assert_eq!(b["state"], "active");
    assert_eq!(b["plan"], "pro");
    assert_eq!(b["customerId"], customer);
    assert_eq!(b["subscriptionId"], sub);
    assert_eq!(b["priceId"], "price_pro_m");
    assert!(b["currentPeriodEnd"].is_string());
    let usage = app.get(&format!("/tenants/{id}/usage")).await.body;
    assert_eq!(usage["plan"], "pro");
    assert_eq!(
        usage["limits"],
        app.get("/plans").await.body["plans"][2]["limits"]
    );
    let actions = audit_actions(&app, id).await;
    assert!(
        actions.contains(&"tenant.limits_changed".to_owned()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"billing.event_applied".to_owned()),
        "{actions:?}"
    );

    // A second Checkout is refused: the plan is changed in the portal.
    let r = app
        .post(
            &format!("/tenants/{id}/billing/checkout"),
            &checkout_body("starter"),
        )
        .await;
    r.assert_error(StatusCode::CONFLICT, "conflict");

    // The subscription is canceled: back to the free plan.
    let e = events::event(
        "evt_cancel",
        "customer.subscription.deleted",
        t + 10,
        events::subscription(
            &sub,
            &customer,
            id,
            "canceled",
            "price_pro_m",
            t,
            t + 30 * DAY,
        ),
    );
    assert_eq!(send(&app, &e).await, "applied");
    let b = billing(&app, id).await;
    assert_eq!(
        (b["state"].as_str(), b["plan"].as_str()),
        (Some("canceled"), Some("free"))
    );
}

#[tokio::test]
async fn a_signed_event_is_applied_once_and_a_replay_changes_nothing() {
    let db = TestDb::new();
    let fake = FakeStripe::start().await;
    let app = app(&db, &fake).await;
    let tenant = app.create_tenant("Once").await;
    let id = tenant["id"].as_str().unwrap();
    let t = now();
    let (customer, sub) = subscribe(&app, &fake, id, t).await;
    let failed = events::event(
        "evt_fail_once",
        "invoice.payment_failed",
        t + 5,
        events::invoice("in_2", &customer, &sub, false),
    );
    assert_eq!(send(&app, &failed).await, "applied");
    let after_first = (billing(&app, id).await, db.row_counts());
    // Stripe retries it (a new signature, the same event): 200, nothing changes.
    assert_eq!(send(&app, &failed).await, "replayed");
    assert_eq!((billing(&app, id).await, db.row_counts()), after_first);
    // Types we do not act on are acknowledged.
    let other = events::event("evt_other", "customer.updated", t, json!({"id": customer}));
    assert_eq!(send(&app, &other).await, "ignored");
    assert_eq!(send(&app, &other).await, "replayed");
}

#[tokio::test]
async fn only_a_valid_signature_on_the_exact_body_is_accepted() {
    let db = TestDb::new();
    let fake = FakeStripe::start().await;
    let app = app(&db, &fake).await;
    let tenant = app.create_tenant("Signed").await;
    let id = tenant["id"].as_str().unwrap();
    let t = now();
    let (customer, sub) = subscribe(&app, &fake, id, t).await;
    let event = events::event(
        "evt_sig",
        "invoice.payment_failed",
        t + 5,
        events::invoice("in_sig", &customer, &sub, false),
    );
    let body = event.to_string();
    let before = (billing(&app, id).await, db.row_counts());

    let old = sign(body.as_bytes(), STRIPE_WEBHOOK_SECRET, now() - 301);
    let tampered_body = body.replace("invoice.payment_failed", "invoice.paid");
    let good = sign(body.as_bytes(), STRIPE_WEBHOOK_SECRET, now());
    let unknown = sign(
        body.as_bytes(),
        "whsec_someone_elses_secret_0000000000",
        now(),
    );
    for (what, payload, header) in [
        ("301 s old", body.as_str(), Some(old.as_str())),
        ("tampered body", tampered_body.as_str(), Some(good.as_str())),
        ("unknown secret", body.as_str(), Some(unknown.as_str())),
        ("no header", body.as_str(), None),
        ("garbage header", body.as_str(), Some("t=abc,v1=zz")),
    ] {
        let r = post_signed(&app, payload.as_bytes(), header).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.text);
        assert_eq!(r.error_code(), "invalid_signature", "{what}");
        assert!(!r.text.contains(STRIPE_WEBHOOK_SECRET));
    }
    assert_eq!(
        (billing(&app, id).await, db.row_counts()),
        before,
        "nothing stored"
    );
    // A valid signature over something that is not an event: 400 too.
    let junk = b"{\"hello\": 1}";
    let r = post_signed(&app, junk, Some(&sign(junk, STRIPE_WEBHOOK_SECRET, now()))).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_event");
    // Several v1 entries (a secret being rolled): one matching is enough.
    let sig = good.split_once("v1=").unwrap().1;
    let rolled = format!(
        "t={},v1={},v1={sig}",
        good[2..].split(',').next().unwrap(),
        "ab".repeat(32)
    );
    let r = post_signed(&app, body.as_bytes(), Some(&rolled)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["outcome"], "applied",
        "the refused attempts stored nothing"
    );
    assert_eq!(billing(&app, id).await["state"], "past_due");
}

#[tokio::test]
async fn out_of_order_subscription_events_follow_stripes_times_not_arrival() {
    let db = TestDb::new();
    let fake = FakeStripe::start().await;
    let app = app(&db, &fake).await;
    let tenant = app.create_tenant("Shuffled").await;
    let id = tenant["id"].as_str().unwrap();
    let t = now() - 3600;
    let (customer, sub) = subscribe(&app, &fake, id, t).await;
    let sub_event = |evt: &str, ty: &str, at: i64, status: &str, price: &str| {
        events::event(
            evt,
            ty,
            at,
            events::subscription(&sub, &customer, id, status, price, t, at + 30 * DAY),
        )
    };
    // An upgrade to… starter at t+20 arrives before a stale update at t+10: the stale one is
    // recorded, changes nothing.
    assert_eq!(
        send(
            &app,
            &sub_event(
                "evt_u20",
                "customer.subscription.updated",
                t + 20,
                "active",
                "price_starter_m"
            )
        )
        .await,
        "applied"
    );
    assert_eq!(billing(&app, id).await["plan"], "starter");
    assert_eq!(
        send(
            &app,
            &sub_event(
                "evt_u10",
                "customer.subscription.updated",
                t + 10,
                "active",
                "price_pro_y"
            )
        )
        .await,
        "ignored"
    );
    assert_eq!(billing(&app, id).await["plan"], "starter");
    // The deletion arrives before an update that happened earlier: it stays canceled.
    assert_eq!(
        send(
            &app,
            &sub_event(
                "evt_d40",
                "customer.subscription.deleted",
                t + 40,
                "canceled",
                "price_starter_m"
            )
        )
        .await,
        "applied"
    );
    assert_eq!(
        send(
            &app,
            &sub_event(
                "evt_u30",
                "customer.subscription.updated",
                t + 30,
                "past_due",
                "price_starter_m"
            )
        )
        .await,
        "ignored"
    );
    let b = billing(&app, id).await;
    assert_eq!(
        (b["state"].as_str(), b["plan"].as_str()),
        (Some("canceled"), Some("free"))
    );
    // An old subscription's events do not override a newer subscription.
    let new_sub = format!("sub_new_{}", &id[..8]);
    let created = t + 100;
    let e = events::event(
        "evt_new",
        "customer.subscription.created",
        created,
        events::subscription(
            &new_sub,
            &customer,
            id,
            "active",
            "price_pro_m",
            created,
            created + 30 * DAY,
        ),
    );
    assert_eq!(send(&app, &e).await, "applied");
    let stale = events::event(
        "evt_old_late",
        "customer.subscription.updated",
        t + 200,
        events::subscription(
            &sub,
            &customer,
            id,
            "canceled",
            "price_starter_m",
            t,
            t + 30 * DAY,
        ),
    );
    assert_eq!(send(&app, &stale).await, "ignored");
    let b = billing(&app, id).await;
    assert_eq!(
        (b["subscriptionId"].as_str(), b["plan"].as_str()),
        (Some(new_sub.as_str()), Some("pro"))
    );
    // A payment failure older than a later success does not start a grace period.
    let paid = events::event(
        "evt_paid_late",
        "invoice.paid",
        t + 300,
        events::invoice("in_p", &customer, &new_sub, true),
    );
    let failed = events::event(
        "evt_failed_early",
        "invoice.payment_failed",
        t + 250,
        events::invoice("in_f", &customer, &new_sub, false),
    );
    assert_eq!(send(&app, &paid).await, "applied");
    assert_eq!(send(&app, &failed).await, "ignored");
    assert_eq!(billing(&app, id).await["state"], "active");
}

#[tokio::test]
async fn payment_failure_grace_suspension_then_paid_restores_with_the_gateway_config_following() {
    let db = TestDb::new();
    let fake = FakeStripe::start().await;
    let app = app(&db, &fake).await;
    let receiver = WebhookReceiver::start().await;
    let tenant = app.create_tenant("Overdue").await;
    let id = tenant["id"].as_str().unwrap();
    let account = tenant["accountId"].as_str().unwrap();
    let r = app
        .post(
            &format!("/tenants/{id}/webhooks"),
            &json!({"url": receiver.url, "eventTypes": ["billing.suspended", "billing.restored"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .post(&format!("/tenants/{id}/channels"),
            &json!({"channel": "telegram", "credentials": {"botToken": "123456:billing-test-token"}}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let config = || async { app.get("/config").await.body };
    let t = now() - 20 * DAY;
    let (customer, sub) = subscribe(&app, &fake, id, t).await;
    assert_eq!(telegram_accounts(&config().await), [account]);

    // A renewal fails (Stripe's time: 3 days ago): past due, in its grace, still served.
    let failed_at = now() - 3 * DAY;
    let e = events::event(
        "evt_f1",
        "invoice.payment_failed",
        failed_at,
        events::invoice("in_r1", &customer, &sub, false),
    );
    assert_eq!(send(&app, &e).await, "applied");
    let b = billing(&app, id).await;
    assert_eq!(b["state"], "past_due");
    assert_eq!(b["plan"], "pro", "the plan stays for the grace period");
    let grace_end =
        chrono::DateTime::parse_from_rfc3339(b["graceEndsAt"].as_str().unwrap()).unwrap();
    assert_eq!(grace_end.timestamp(), failed_at + 7 * DAY);
    assert_eq!(telegram_accounts(&config().await), [account]);

    // The subscription went past due 8 days ago (an earlier failure, told late): grace over,
    // suspended at once — out of the gateway config, billing.suspended sent.
    let e = events::event(
        "evt_s_pd",
        "customer.subscription.updated",
        now() - 8 * DAY,
        events::subscription(
            &sub,
            &customer,
            id,
            "past_due",
            "price_pro_m",
            t,
            t + 30 * DAY,
        ),
    );
    assert_eq!(send(&app, &e).await, "applied");
    let b = billing(&app, id).await;
    assert_eq!(b["state"], "suspended");
    assert!(b["suspendedAt"].is_string());
    let doc = config().await;
    assert!(telegram_accounts(&doc).is_empty(), "{doc}");
    assert!(
        !doc.to_string().contains(&id[..8]),
        "the tenant is out of the config"
    );
    assert_eq!(
        app.get(&format!("/tenants/{id}")).await.body["status"],
        "suspended"
    );
    eventually(10, "billing.suspended delivered", || async {
        receiver
            .requests()
            .iter()
            .any(|c| c.json()["type"] == "billing.suspended")
    })
    .await;
    let suspended = receiver
        .requests()
        .into_iter()
        .find(|c| c.json()["type"] == "billing.suspended")
        .unwrap()
        .json();
    assert_eq!(suspended["data"]["tenantId"], id);
    assert_eq!(suspended["data"]["subscriptionId"], sub.as_str());

    // Paid: restored, back in the config, billing.restored sent.
    let e = events::event(
        "evt_paid",
        "invoice.paid",
        now(),
        events::invoice("in_r1", &customer, &sub, true),
    );
    assert_eq!(send(&app, &e).await, "applied");
    let e = events::event(
        "evt_s_ok",
        "customer.subscription.updated",
        now(),
        events::subscription(
            &sub,
            &customer,
            id,
            "active",
            "price_pro_m",
            t,
            now() + 30 * DAY,
        ),
    );
    assert_eq!(send(&app, &e).await, "applied");
    let b = billing(&app, id).await;
    assert_eq!(
        (b["state"].as_str(), b["plan"].as_str()),
        (Some("active"), Some("pro"))
    );
    assert_eq!(b["suspendedAt"], Value::Null);
    assert_eq!(telegram_accounts(&config().await), [account]);
    assert_eq!(
        app.get(&format!("/tenants/{id}")).await.body["status"],
        "active"
    );
    eventually(10, "billing.restored delivered", || async {
        receiver
            .requests()
            .iter()
            .any(|c| c.json()["type"] == "billing.restored")
    })
    .await;
    let actions = audit_actions(&app, id).await;
    for a in ["billing.suspended", "billing.restored"] {
        assert_eq!(
            actions.iter().filter(|x| *x == a).count(),
            1,
            "{a}: {actions:?}"
        );
    }
}

#[tokio::test]
async fn the_sweep_suspends_a_tenant_whose_grace_ran_out_once() {
    let db = TestDb::new();
    let fake = FakeStripe::start().await;
    let mut settings = test_settings(&db);
    enable_billing(&mut settings, &fake.url);
    let app = spawn_app_with(settings.clone()).await;
    let tenant = app.create_tenant("Swept").await;
    let id = tenant["id"].as_str().unwrap();
    let t = now() - 10 * DAY;
    let (customer, sub) = subscribe(&app, &fake, id, t).await;
    let e = events::event(
        "evt_sw",
        "invoice.payment_failed",
        now() - DAY,
        events::invoice("in_sw", &customer, &sub, false),
    );
    assert_eq!(send(&app, &e).await, "applied");
    assert_eq!(billing(&app, id).await["state"], "past_due");

    // The embedder's (and the background task's) sweep, a week on: suspended once.
    let mut options = tenant_service::control_plane::open::OpenOptions {
        key_ring: Some(moltbot_saas_tests::test_keys()),
        api_key_secret: settings.api_key_secret.clone(),
        data_dir: Some(std::env::temp_dir().join(format!("sweep-{}", uuid::Uuid::new_v4()))),
        billing: settings.billing.config.clone(),
        ..Default::default()
    };
    options.identity.jwt_secret = settings.identity.jwt_secret.clone();
    let control = tenant_service::ControlPlane::open_with(db.url(), options).unwrap();
    let in_a_week = chrono::Utc::now() + chrono::Duration::days(7);
    assert!(
        control
            .suspend_overdue(chrono::Utc::now())
            .await
            .unwrap()
            .is_empty(),
        "grace left"
    );
    let swept = control.suspend_overdue(in_a_week).await.unwrap();
    assert_eq!(
        swept.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [id]
    );
    assert!(
        control.suspend_overdue(in_a_week).await.unwrap().is_empty(),
        "once"
    );
    assert_eq!(billing(&app, id).await["state"], "suspended");
    // The server's read cache catches up with another process's change within its sync time.
    eventually(10, "the server sees the suspension", || async {
        app.get(&format!("/tenants/{id}")).await.body["status"] == "suspended"
    })
    .await;
}
