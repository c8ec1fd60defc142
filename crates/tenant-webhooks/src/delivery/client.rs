//! The delivery HTTP client: no proxies, no redirects, bounded time, and a resolver that refuses
//! forbidden addresses, so the guard sees exactly the addresses connected to.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER, USER_AGENT};

use super::guard::AddressPolicy;
use crate::signing::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP};

/// The most bytes of a response body kept with an attempt.
pub const EXCERPT_BYTES: usize = 1024;

/// Resolves names and drops forbidden addresses; a name left with none fails to resolve.
#[derive(Debug)]
struct GuardedResolver {
    policy: Arc<AddressPolicy>,
}

/// The error of a name whose every address is forbidden.
#[derive(Debug, thiserror::Error)]
#[error("refused: {name} resolves only to forbidden addresses ({class})")]
pub struct Refused {
    name: String,
    class: &'static str,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut class = "none";
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match policy.check(a.ip()) {
                    Ok(()) => true,
                    Err(c) => {
                        class = c;
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(Refused { name: host, class }) as _);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Settings of the client.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Whole-request timeout.
    pub request_timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Allowed destinations.
    pub policy: AddressPolicy,
    /// Refuse `http://` URLs.
    pub require_https: bool,
}

/// A guarded client.
#[derive(Debug, Clone)]
pub struct DeliveryClient {
    http: reqwest::Client,
    policy: Arc<AddressPolicy>,
    require_https: bool,
}

/// One request's result.
#[derive(Debug, Clone)]
pub struct Response {
    /// `success`, `http_error`, `timeout`, `connect_error` or `refused`.
    pub outcome: &'static str,
    /// The status, when a response came.
    pub status: Option<u16>,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
    /// The start of the body.
    pub excerpt: Option<String>,
    /// What went wrong, for the tenant.
    pub error: Option<String>,
    /// Time taken.
    pub latency: Duration,
}

/// Why a URL is refused before any connection.
pub fn check_url(
    url: &str,
    policy: &AddressPolicy,
    require_https: bool,
) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    match parsed.scheme() {
        "https" => {}
        "http" if !require_https => {}
        "http" => return Err("https is required".into()),
        other => return Err(format!("the scheme must be http or https, not {other}")),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("the URL may not carry credentials".into());
    }
    let host = parsed.host_str().ok_or("the URL has no host")?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        policy.check(ip).map_err(refused_class)?;
    } else {
        let lower = host.to_ascii_lowercase();
        if lower == "localhost" || lower.ends_with(".localhost") {
            policy
                .check(IpAddr::from([127, 0, 0, 1]))
                .map_err(refused_class)?;
        }
    }
    Ok(parsed)
}

fn refused_class(class: &'static str) -> String {
    format!("refused: the destination is a {class} address")
}

impl DeliveryClient {
    /// Builds the client.
    pub fn new(config: &ClientConfig) -> Result<Self, reqwest::Error> {
        let policy = Arc::new(config.policy.clone());
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .dns_resolver(Arc::new(GuardedResolver {
                policy: policy.clone(),
            }))
            .build()?;
        Ok(Self {
            http,
            policy,
            require_https: config.require_https,
        })
    }

    /// POSTs a signed body; never fails, every failure is an outcome.
    pub async fn post(
        &self,
        url: &str,
        msg_id: &str,
        timestamp: i64,
        signature: &str,
        body: String,
    ) -> Response {
        let started = Instant::now();
        let fail = |outcome, error: String| Response {
            outcome,
            status: None,
            retry_after: None,
            excerpt: None,
            error: Some(error),
            latency: started.elapsed(),
        };
        let url = match check_url(url, &self.policy, self.require_https) {
            Ok(u) => u,
            Err(e) => return fail("refused", e),
        };
        let request = self
            .http
            .post(url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(
                USER_AGENT,
                HeaderValue::from_static("moltbot-saas-webhooks/1"),
            )
            .header(HEADER_ID, msg_id)
            .header(HEADER_TIMESTAMP, timestamp.to_string())
            .header(HEADER_SIGNATURE, signature)
            .body(body);
        let mut resp = match request.send().await {
            Ok(r) => r,
            Err(e) => return classify(e, started),
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut excerpt = Vec::new();
        while excerpt.len() < EXCERPT_BYTES {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    let room = EXCERPT_BYTES - excerpt.len();
                    excerpt.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                // A body cut short or too slow does not change the verdict of the status.
                Ok(None) | Err(_) => break,
            }
        }
        let ok = (200..300).contains(&status);
        Response {
            outcome: if ok { "success" } else { "http_error" },
            status: Some(status),
            retry_after,
            excerpt: (!excerpt.is_empty()).then(|| String::from_utf8_lossy(&excerpt).into_owned()),
            error: (!ok).then(|| format!("the endpoint answered {status}")),
            latency: started.elapsed(),
        }
    }
}

fn classify(e: reqwest::Error, started: Instant) -> Response {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    let mut refused = None;
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<Refused>() {
            refused = Some(r.to_string());
        }
        source = s.source();
    }
    let (outcome, error) = match refused {
        Some(r) => ("refused", r),
        None if e.is_timeout() => ("timeout", "the endpoint did not answer in time".to_owned()),
        None if e.is_connect() => ("connect_error", "cannot connect to the endpoint".to_owned()),
        None => (
            "connect_error",
            "the request failed before a response".to_owned(),
        ),
    };
    Response {
        outcome,
        status: None,
        retry_after: None,
        excerpt: None,
        error: Some(error),
        latency: started.elapsed(),
    }
}
