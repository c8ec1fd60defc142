//! A fake Stripe on 127.0.0.1 port 0 that the server talks to over real HTTP: customers (with
//! Stripe's idempotency keys), Checkout Sessions and customer portal sessions, form-encoded
//! like Stripe's API, refusing a wrong secret key; scripted failures and stalls (a call accepted
//! and never answered, or answered late); and the events Stripe
//! would send when a Checkout completes, signed like Stripe signs them — by the official
//! `stripe` library from PyPI when `STRIPE_SIGNER` names its signing script (the CI step
//! `scripts/billing/verify-stripe-signatures.sh`), else by the project's own helper.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

/// The secret key the fake accepts.
pub const STRIPE_TEST_KEY: &str = "sk_test_fake_0123456789abcdefghijklmnop";
/// The webhook signing secret tests use.
pub const STRIPE_WEBHOOK_SECRET: &str = "whsec_test_0123456789abcdefghijklmnopqrst";
/// The price map tests configure.
pub const STRIPE_PRICES: &str = "price_starter_m=starter,price_pro_m=pro,price_pro_y=pro";

/// A request the fake got.
#[derive(Debug, Clone)]
pub struct StripeCall {
    /// The path (`/v1/customers`, …).
    pub path: String,
    /// The form fields.
    pub form: HashMap<String, String>,
    /// The `Idempotency-Key` header, if any.
    pub idempotency_key: Option<String>,
}

/// A scripted failure of the next call to a path.
#[derive(Debug, Clone)]
struct Failure {
    path: &'static str,
    status: u16,
    /// Do the work anyway, then fail (an answer lost on the way back).
    after_work: bool,
}

/// How the fake answers the calls to a path.
#[derive(Debug, Clone, Copy)]
enum Pace {
    /// It reads the request and never answers (the connection stays open).
    Never,
    /// It waits this long, then does the work and answers (the work is done even if the
    /// client gave up meanwhile, as Stripe would).
    Late(Duration),
}

#[derive(Default)]
struct Inner {
    calls: Vec<StripeCall>,
    customers: HashMap<String, Value>,
    by_idempotency_key: HashMap<String, String>,
    sessions: HashMap<String, Value>,
    failures: Vec<Failure>,
    paces: HashMap<&'static str, Pace>,
    next: u64,
    /// Set by [`FakeStripe::stop`]: a call that still arrives (on a connection the client kept
    /// alive while the server stops) is answered 503 without effect, never served.
    stopped: bool,
}

/// The running fake.
pub struct FakeStripe {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    handle: actix_web::dev::ServerHandle,
}

fn error(status: u16, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).json(json!({
        "error": {"type": "invalid_request_error", "code": code, "message": message}
    }))
}

async fn handle(
    req: HttpRequest,
    body: web::Bytes,
    inner: web::Data<Arc<Mutex<Inner>>>,
) -> HttpResponse {
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if auth != format!("Bearer {STRIPE_TEST_KEY}") {
        return error(401, "api_key_invalid", "Invalid API Key provided");
    }
    if inner.lock().unwrap().stopped {
        return error(503, "unavailable", "Stripe is unavailable");
    }
    let path = req.path().to_owned();
    let form: HashMap<String, String> = url_pairs(&body);
    let idempotency_key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let pace = {
        let mut s = inner.lock().unwrap();
        s.calls.push(StripeCall {
            path: path.clone(),
            form: form.clone(),
            idempotency_key: idempotency_key.clone(),
        });
        s.paces.get(path.as_str()).copied()
    };
    match pace {
        Some(Pace::Never) => std::future::pending::<()>().await,
        Some(Pace::Late(delay)) => tokio::time::sleep(delay).await,
        None => {}
    }
    let mut s = inner.lock().unwrap();
    let failure = s
        .failures
        .iter()
        .position(|f| f.path == path)
        .map(|i| s.failures.remove(i));
    if let Some(f) = &failure
        && !f.after_work
    {
        return HttpResponse::build(actix_web::http::StatusCode::from_u16(f.status).unwrap())
            .insert_header(("Retry-After", "7"))
            .json(json!({"error": {"type": "api_error", "message": "scripted failure"}}));
    }
    s.next += 1;
    let n = s.next;
    let answer = match path.as_str() {
        "/v1/customers" => {
            let replayed = idempotency_key
                .as_ref()
                .and_then(|k| s.by_idempotency_key.get(k).cloned());
            let id = match replayed {
                Some(id) => id,
                None => {
                    let id = format!("cus_fake{n}");
                    s.customers.insert(
                        id.clone(),
                        json!({"id": id, "name": form.get("name"),
                               "metadata": {"tenant_id": form.get("metadata[tenant_id]")}}),
                    );
                    if let Some(k) = idempotency_key {
                        s.by_idempotency_key.insert(k, id.clone());
                    }
                    id
                }
            };
            s.customers[&id].clone()
        }
        "/v1/checkout/sessions" => {
            let customer = form.get("customer").cloned().unwrap_or_default();
            if !s.customers.contains_key(&customer) {
                return error(400, "resource_missing", "No such customer");
            }
            for field in [
                "line_items[0][price]",
                "success_url",
                "cancel_url",
                "client_reference_id",
            ] {
                if form.get(field).is_none_or(String::is_empty) {
                    return error(400, "parameter_missing", field);
                }
            }
            if form.get("mode").map(String::as_str) != Some("subscription") {
                return error(400, "parameter_invalid", "mode");
            }
            let id = format!("cs_test_fake{n}");
            let session = json!({
                "id": id,
                "object": "checkout.session",
                "url": format!("https://checkout.stripe.test/c/pay/{id}"),
                "customer": customer,
                "client_reference_id": form.get("client_reference_id"),
                "price": form.get("line_items[0][price]"),
                "tenant_id": form.get("subscription_data[metadata][tenant_id]"),
                "mode": "subscription",
            });
            s.sessions.insert(id, session.clone());
            session
        }
        "/v1/billing_portal/sessions" => {
            let customer = form.get("customer").cloned().unwrap_or_default();
            if !s.customers.contains_key(&customer) {
                return error(400, "resource_missing", "No such customer");
            }
            let id = format!("bps_fake{n}");
            json!({"id": id, "url": format!("https://billing.stripe.test/p/session/{id}"),
                   "customer": customer, "return_url": form.get("return_url")})
        }
        _ => return error(404, "resource_missing", "Unrecognized request URL"),
    };
    if let Some(f) = failure {
        return HttpResponse::build(actix_web::http::StatusCode::from_u16(f.status).unwrap())
            .insert_header(("Retry-After", "7"))
            .json(json!({"error": {"type": "api_error", "message": "lost answer"}}));
    }
    HttpResponse::Ok().json(answer)
}

fn url_pairs(body: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.replace('+', " ").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&String::from_utf8_lossy(&bytes[i + 1..i + 3]), 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl FakeStripe {
    /// Starts the fake.
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let (port, handle) = crate::receiver::serve_loopback(inner.clone(), 1, handle);
        Self {
            url: format!("http://127.0.0.1:{port}"),
            inner,
            handle,
        }
    }

    /// The next call to `path` fails with `status` (and `Retry-After: 7`) before doing anything.
    pub fn fail_next(&self, path: &'static str, status: u16) {
        self.inner.lock().unwrap().failures.push(Failure {
            path,
            status,
            after_work: false,
        });
    }

    /// The next call to `path` does its work, then answers `status` (the answer is lost).
    pub fn lose_next_answer(&self, path: &'static str, status: u16) {
        self.inner.lock().unwrap().failures.push(Failure {
            path,
            status,
            after_work: true,
        });
    }

    /// Calls to `path` are accepted and read, and never answered, until [`Self::answer_promptly`].
    pub fn hang(&self, path: &'static str) {
        self.inner.lock().unwrap().paces.insert(path, Pace::Never);
    }

    /// Calls to `path` are answered after `delay` (their work done then), until
    /// [`Self::answer_promptly`].
    pub fn answer_late(&self, path: &'static str, delay: Duration) {
        self.inner
            .lock()
            .unwrap()
            .paces
            .insert(path, Pace::Late(delay));
    }

    /// Every call is answered at once again (calls already hanging stay so).
    pub fn answer_promptly(&self) {
        self.inner.lock().unwrap().paces.clear();
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<StripeCall> {
        self.inner.lock().unwrap().calls.clone()
    }

    /// The calls to one path.
    pub fn calls_to(&self, path: &str) -> Vec<StripeCall> {
        self.calls()
            .into_iter()
            .filter(|c| c.path == path)
            .collect()
    }

    /// How many customers exist.
    pub fn customer_count(&self) -> usize {
        self.inner.lock().unwrap().customers.len()
    }

    /// A Checkout Session created through the fake.
    pub fn session(&self, id: &str) -> Value {
        self.inner.lock().unwrap().sessions[id].clone()
    }

    /// Stops the fake (calls then fail to connect; one that arrives on a connection kept alive
    /// while the server stops gets a 503 and has no effect).
    pub async fn stop(self) {
        self.inner.lock().unwrap().stopped = true;
        self.handle.stop(false).await;
    }
}

/// Turns billing on in `settings`, against the fake at `api_base`.
pub fn enable_billing(settings: &mut tenant_server::settings::Settings, api_base: &str) {
    use tenant_service::billing::{BillingConfig, DEFAULT_GRACE, PriceMap};
    settings.billing.config = Some(BillingConfig {
        secret_key: tenant_core::Secret::new(STRIPE_TEST_KEY),
        webhook_secret: tenant_core::Secret::new(STRIPE_WEBHOOK_SECRET),
        api_base: api_base.to_owned(),
        prices: PriceMap::parse(STRIPE_PRICES).unwrap(),
        grace: DEFAULT_GRACE,
        timeout: std::time::Duration::from_secs(5),
    });
}

/// Stripe events for tests: bodies as Stripe sends them.
pub mod events {
    use serde_json::{Value, json};

    /// An event envelope.
    pub fn event(id: &str, event_type: &str, created: i64, object: Value) -> Value {
        json!({
            "id": id,
            "object": "event",
            "api_version": "2024-06-20",
            "created": created,
            "livemode": false,
            "type": event_type,
            "data": {"object": object},
        })
    }

    /// A subscription object.
    pub fn subscription(
        id: &str,
        customer: &str,
        tenant_id: &str,
        status: &str,
        price: &str,
        created: i64,
        period_end: i64,
    ) -> Value {
        json!({
            "id": id,
            "object": "subscription",
            "customer": customer,
            "status": status,
            "created": created,
            "current_period_end": period_end,
            "metadata": {"tenant_id": tenant_id},
            "items": {"object": "list", "data": [
                {"id": format!("si_{id}"), "price": {"id": price, "object": "price"}, "quantity": 1}
            ]},
        })
    }

    /// An invoice object of a subscription.
    pub fn invoice(id: &str, customer: &str, subscription: &str, paid: bool) -> Value {
        json!({
            "id": id,
            "object": "invoice",
            "customer": customer,
            "subscription": subscription,
            "status": if paid { "paid" } else { "open" },
            "paid": paid,
        })
    }

    /// A completed Checkout Session.
    pub fn checkout_completed(
        session_id: &str,
        customer: &str,
        tenant_id: &str,
        subscription: &str,
    ) -> Value {
        json!({
            "id": session_id,
            "object": "checkout.session",
            "mode": "subscription",
            "customer": customer,
            "client_reference_id": tenant_id,
            "subscription": subscription,
            "payment_status": "paid",
            "status": "complete",
        })
    }
}

/// Signs event bodies like Stripe: with the official `stripe` library when `STRIPE_SIGNER` is
/// set (a command taking the secret and timestamp as arguments and the body on standard input,
/// printing the header: `scripts/billing/stripe_sign.py`), else with the project's helper.
pub fn sign(body: &[u8], secret: &str, timestamp: i64) -> String {
    match std::env::var("STRIPE_SIGNER") {
        Ok(signer) if !signer.is_empty() => {
            use std::io::Write;
            let mut parts = signer.split_whitespace();
            let program = parts.next().unwrap();
            let mut child = std::process::Command::new(program)
                .args(parts)
                .arg(secret)
                .arg(timestamp.to_string())
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("STRIPE_SIGNER cannot be run");
            child.stdin.take().unwrap().write_all(body).unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "STRIPE_SIGNER failed");
            if let Ok(log) = std::env::var("STRIPE_SIGNED_LOG") {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
                    .unwrap();
                writeln!(f, "{timestamp}").unwrap();
            }
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        }
        _ => tenant_service::billing::signature::header(secret.as_bytes(), timestamp, body),
    }
}
