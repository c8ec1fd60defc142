//! A real server on 127.0.0.1 port 0, and a client for it.

use std::io::Write;
use std::sync::{Mutex, Once};

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tenant_core::Secret;
use tenant_server::settings::{LogFormat, Settings};
use tenant_server::startup::Application;
use tenant_store::DatabaseUrl;

use crate::TestDb;

/// A running server and a client authenticated as an operator.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The port bound.
    pub port: u16,
    /// The operator token the server accepts.
    pub operator_token: String,
    /// The gateway token the server accepts.
    pub gateway_token: String,
    /// A plain HTTP client.
    pub client: reqwest::Client,
    /// The port of the separate metrics listener, when `SAAS_METRICS_ADDR` is set.
    pub metrics_port: Option<u16>,
    handle: actix_web::dev::ServerHandle,
    /// The task running the server; it ends once the server and its background tasks are gone.
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

static TRACING: Once = Once::new();

/// Every plan with request and count limits no test reaches (the monthly messages stay the
/// built-in ones); the limits tests set their own with per-tenant overrides.
pub const GENEROUS_PLANS: &str = r#"{
    "free": {"requestsPerMinutePerKey": 1000000, "requestsPerMinutePerTenant": 1000000, "requestBurst": 100000, "maxChannels": 10000, "maxWebhookEndpoints": 1000},
    "starter": {"requestsPerMinutePerKey": 1000000, "requestsPerMinutePerTenant": 1000000, "requestBurst": 100000, "maxChannels": 10000, "maxWebhookEndpoints": 1000},
    "pro": {"requestsPerMinutePerKey": 1000000, "requestsPerMinutePerTenant": 1000000, "requestBurst": 100000, "maxChannels": 10000, "maxWebhookEndpoints": 1000},
    "enterprise": {"requestsPerMinutePerKey": 1000000, "requestsPerMinutePerTenant": 1000000, "requestBurst": 100000, "maxChannels": 10000, "maxWebhookEndpoints": 1000}
}"#;

/// Settings for a test server on `db`: port 0, random operator and gateway tokens.
pub fn test_settings(db: &TestDb) -> Settings {
    let mut settings = Settings::from_lookup(|_| None).unwrap();
    settings.port = 0;
    settings.database_url = DatabaseUrl::parse(db.url()).unwrap();
    settings.admin_token = Some(Secret::new(format!(
        "test-operator-token-{}",
        uuid::Uuid::new_v4().simple()
    )));
    settings.gateway_token = Some(Secret::new(format!(
        "test-gateway-token-{}",
        uuid::Uuid::new_v4().simple()
    )));
    settings.identity.jwt_secret = Some(Secret::new(format!(
        "test-jwt-secret-{}",
        uuid::Uuid::new_v4().simple()
    )));
    settings.api_key_secret = Some(Secret::new(format!(
        "test-api-key-secret-{}",
        uuid::Uuid::new_v4().simple()
    )));
    settings.workers = Some(2);
    settings.shutdown_timeout_secs = 1;
    settings.db_pool_size = 4;
    settings.encryption_keys = Some(crate::test_keys());
    // Every request logged, so the leak tests see every access line.
    settings.access_log.mode = tenant_server::http::request_log::AccessLog::All;
    // Rate limits on (every answer goes through them), but far above what a test asks for:
    // the suite makes hundreds of requests per tenant and login address in a second, and
    // creates channels and endpoints without removing them. The limits tests set their own.
    settings.limits.plans = tenant_service::plans::PlanCatalog::from_json(GENEROUS_PLANS).unwrap();
    settings.limits.login_quota = tenant_service::rate_limit::Quota {
        per_minute: 1_000_000,
        burst: 100_000,
    };
    // The store gauges are process-wide: only the test about them refreshes them.
    settings.metrics.refresh = std::time::Duration::from_secs(3600);
    settings
}

/// Starts a server on `db` with default test settings.
pub async fn spawn_app(db: &TestDb) -> TestApp {
    spawn_app_with(test_settings(db)).await
}

/// Installs the log capture (see [`captured_logs`]) if it is not yet: servers started by
/// [`spawn_app_with`] do it; a test that uses the store alone calls this.
pub fn capture_logs() {
    TRACING.call_once(|| {
        let echo = std::env::var_os("TEST_LOG").is_some();
        // Debug lines of our crates too, so the leak tests search everything we might log.
        tenant_server::telemetry::init(
            LogFormat::Json,
            "info,tenant_server=debug,tenant_service=debug,tenant_store=debug,tenant_webhooks=debug",
            move || CaptureWriter { echo },
            false,
        );
    });
}

/// Every log line the test servers of this process wrote (JSON, one object a line), so a test
/// can search them for values that must never be logged. Capped at 256 MiB.
pub fn captured_logs() -> String {
    let logs = LOGS.lock().unwrap_or_else(|e| e.into_inner());
    String::from_utf8_lossy(&logs).into_owned()
}

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());
const LOGS_CAP: usize = 256 << 20;

/// Appends log lines to [`LOGS`], and to stdout when `TEST_LOG` is set.
struct CaptureWriter {
    echo: bool,
}

impl Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut logs) = LOGS.lock()
            && logs.len() + buf.len() <= LOGS_CAP
        {
            logs.extend_from_slice(buf);
        }
        if self.echo {
            std::io::stdout().write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts a server with the given settings. Logs are captured (see [`captured_logs`]) and also
/// go to stdout when `TEST_LOG` is set.
pub async fn spawn_app_with(settings: Settings) -> TestApp {
    spawn_app_with_routes(settings, |_| {}).await
}

/// Starts a server with the given settings and extra routes (operators only; see
/// `Application::build_with_routes`).
pub async fn spawn_app_with_routes(
    settings: Settings,
    routes: fn(&mut actix_web::web::ServiceConfig),
) -> TestApp {
    capture_logs();
    let operator_token = settings
        .admin_token
        .as_ref()
        .map(|t| t.expose().to_owned())
        .unwrap_or_default();
    let gateway_token = settings
        .gateway_token
        .as_ref()
        .map(|t| t.expose().to_owned())
        .unwrap_or_default();
    let app = Application::build_with_routes(&settings, routes).expect("server failed to start");
    let port = app.port();
    let metrics_port = app.metrics_port();
    let handle = app.handle();
    let task = tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        operator_token,
        gateway_token,
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
        metrics_port,
        handle,
        task,
    }
}

/// A response: status, headers and JSON body (`Value::Null` when empty or not JSON).
#[derive(Debug)]
pub struct TestResponse {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body as JSON.
    pub body: Value,
    /// The raw body as text (lossy UTF-8), to search for values that must never appear.
    pub text: String,
}

impl TestResponse {
    /// The error code of an error body.
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// The error message of an error body.
    pub fn error_message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }

    /// Asserts the status and that the body is `{"error": {"code", "message", "details"}}` with
    /// this code and nothing else at the top level; returns `self` for further checks.
    #[track_caller]
    pub fn assert_error(&self, status: StatusCode, code: &str) -> &Self {
        assert_eq!(self.status, status, "{}", self.text);
        let top = self
            .body
            .as_object()
            .unwrap_or_else(|| panic!("error body is not a JSON object: {:?}", self.text));
        assert_eq!(top.len(), 1, "only `error` at the top level: {}", self.text);
        let error = self.body["error"]
            .as_object()
            .unwrap_or_else(|| panic!("no `error` object: {}", self.text));
        assert_eq!(error["code"], code, "{}", self.text);
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "a non-empty message: {}",
            self.text
        );
        assert!(
            error["details"].is_object(),
            "details object: {}",
            self.text
        );
        self
    }

    /// The fields named by a `validation_failed` body (`details.fields[].field`).
    pub fn invalid_fields(&self) -> Vec<String> {
        self.body["error"]["details"]["fields"]
            .as_array()
            .map(|fs| {
                fs.iter()
                    .filter_map(|f| f["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl TestApp {
    /// Sends a request with the operator token.
    pub async fn request(&self, method: Method, path: &str, body: Option<&Value>) -> TestResponse {
        self.request_as(Some(&self.operator_token), method, path, body)
            .await
    }

    /// Sends a request with the given bearer token (none when `None`).
    pub async fn request_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> TestResponse {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        Self::into_test_response(req.send().await.expect("request failed")).await
    }

    /// Sends a request with the given bearer token and one more header (an `Idempotency-Key`).
    pub async fn request_with_header(
        &self,
        token: &str,
        method: Method,
        path: &str,
        header: (&str, &str),
        body: Option<&Value>,
    ) -> TestResponse {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(token)
            .header(header.0, header.1);
        if let Some(b) = body {
            req = req.json(b);
        }
        Self::into_test_response(req.send().await.expect("request failed")).await
    }

    /// Sends a raw body with a content type, with the operator token.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> TestResponse {
        let req = self
            .client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(&self.operator_token)
            .header("content-type", content_type)
            .body(body);
        Self::into_test_response(req.send().await.expect("request failed")).await
    }

    /// Sends a request without a body whose `Authorization` header is exactly `authorization`
    /// (instead of the operator's bearer token).
    pub async fn request_with_authorization(
        &self,
        authorization: &str,
        method: Method,
        path: &str,
    ) -> TestResponse {
        let req = self
            .client
            .request(method, format!("{}{path}", self.address))
            .header("authorization", authorization);
        Self::into_test_response(req.send().await.expect("request failed")).await
    }

    /// Reads a response of the server: status, headers, body (JSON when it is).
    pub async fn into_test_response(resp: reqwest::Response) -> TestResponse {
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body failed");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        TestResponse {
            status,
            headers,
            body,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// `GET` with the operator token.
    pub async fn get(&self, path: &str) -> TestResponse {
        self.request(Method::GET, path, None).await
    }

    /// `POST` JSON with the operator token.
    pub async fn post(&self, path: &str, body: &Value) -> TestResponse {
        self.request(Method::POST, path, Some(body)).await
    }

    /// `PATCH` JSON with the operator token.
    pub async fn patch(&self, path: &str, body: &Value) -> TestResponse {
        self.request(Method::PATCH, path, Some(body)).await
    }

    /// `DELETE` with the operator token.
    pub async fn delete(&self, path: &str) -> TestResponse {
        self.request(Method::DELETE, path, None).await
    }

    /// Creates a tenant from a full request body; returns the created body (with `apiKey`).
    pub async fn create_tenant_with(&self, body: &Value) -> Value {
        let r = self.post("/tenants", body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body
    }

    /// Creates a tenant; returns the created body (with `apiKey`).
    pub async fn create_tenant(&self, name: &str) -> Value {
        let r = self
            .post("/tenants", &serde_json::json!({ "name": name }))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body
    }

    /// Stops the server, letting in-flight requests finish, and returns once its background
    /// tasks have ended and its database connections are closed (an SQLite file is then whole:
    /// no connection is left to checkpoint or remove its `-wal` file behind the caller's back).
    pub async fn stop(self) {
        self.handle.stop(true).await;
        if let Err(e) = self.task.await {
            assert!(e.is_cancelled(), "the server task failed: {e}");
        }
    }
}
