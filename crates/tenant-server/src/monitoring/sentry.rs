//! Error reporting to Sentry when `SENTRY_DSN` is set: panics and 5xx answers, each with the
//! request id, the route template, the method, the status and the release; nothing when it is
//! unset (no client, no hook work, no middleware work).
//!
//! Nothing of a request is sent but those tags and the error's own text: no headers, no body,
//! no path (the template stands for it), no user. Every text is scrubbed before it leaves
//! ([`scrub`], the client's `before_send`): a bearer credential, and any long run of token-like
//! characters mixing letters and digits (tokens, API keys, channel credentials, secrets), are
//! replaced by `[redacted]`.
//!
//! The transport is ours: the envelopes are posted from a thread of their own with the `reqwest`
//! client already in the build (the crate's own transports would bring a second TLS stack).

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, Once, OnceLock, PoisonError};
use std::time::Duration;

use sentry::protocol::{Event, Exception, Level, Values};
use sentry::types::Dsn;
use sentry::{ClientOptions, Envelope};
use sentry::{Transport, TransportFactory};
use tenant_core::Secret;

/// Sentry's settings (`SENTRY_DSN`, `SENTRY_ENVIRONMENT`, `SENTRY_RELEASE`).
#[derive(Debug, Clone, Default)]
pub struct SentrySettings {
    /// Where to report; `None`: reporting is off.
    pub dsn: Option<Secret>,
    /// The environment reported (default: `SAAS_ENV`'s value).
    pub environment: Option<String>,
    /// The release reported (default: `moltbot-saas@<version>`).
    pub release: Option<String>,
}

/// Reports errors to one Sentry project.
pub struct Reporter {
    client: Arc<sentry::Client>,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter").finish_non_exhaustive()
    }
}

/// What a request that went wrong is reported with.
#[derive(Debug, Clone, Copy)]
pub struct RequestTags<'a> {
    /// The request id (also in the response's `x-request-id`).
    pub request_id: &'a str,
    /// The method.
    pub method: &'a str,
    /// The route template (`/tenants/{id}`), never the path.
    pub route: &'a str,
    /// The status answered.
    pub status: u16,
}

impl Reporter {
    /// A reporter for `settings`' DSN; `Ok(None)` when none is set. `environment` is the
    /// default environment name.
    pub fn new(settings: &SentrySettings, environment: &str) -> Result<Option<Arc<Self>>, String> {
        let Some(dsn) = &settings.dsn else {
            return Ok(None);
        };
        let dsn: Dsn = dsn
            .expose()
            .parse()
            .map_err(|e| format!("SENTRY_DSN is not a DSN: {e}"))?;
        let release = settings
            .release
            .clone()
            .unwrap_or_else(|| format!("moltbot-saas@{}", env!("CARGO_PKG_VERSION")));
        let mut options = ClientOptions::default();
        options.dsn = Some(dsn);
        options.release = Some(Cow::Owned(release));
        options.environment = Some(Cow::Owned(
            settings
                .environment
                .clone()
                .unwrap_or_else(|| environment.to_owned()),
        ));
        options.send_default_pii = false;
        options.attach_stacktrace = false;
        options.default_integrations = false;
        options.before_send = Some(Arc::new(|event| Some(scrub_event(event))));
        options.before_breadcrumb = Some(Arc::new(|mut crumb| {
            crumb.message = crumb.message.map(|m| scrub(&m));
            crumb.data.clear();
            Some(crumb)
        }));
        options.transport = Some(Arc::new(HttpTransportFactory));
        install_panic_hook();
        Ok(Some(Arc::new(Self {
            client: Arc::new(sentry::Client::from(options)),
        })))
    }

    /// The client, e.g. to bind to the process's main hub (for the tracing integration).
    pub fn client(&self) -> &Arc<sentry::Client> {
        &self.client
    }

    /// Reports a request answered with a 5xx; `cause`: the error's own text, when there is one
    /// (scrubbed before sending).
    pub fn report_error(&self, tags: RequestTags<'_>, code: &str, cause: Option<&str>) {
        let value = match cause {
            Some(c) => format!("{code}: {c}"),
            None => code.to_owned(),
        };
        self.capture(
            tags,
            format!("HTTP {} on {} {}", tags.status, tags.method, tags.route),
            "http_error",
            value,
            None,
        );
    }

    /// Reports a panic while serving a request (answered 500): its message and where it was.
    pub fn report_panic(&self, tags: RequestTags<'_>, message: &str, location: Option<&str>) {
        self.capture(
            tags,
            format!("panic on {} {}", tags.method, tags.route),
            "panic",
            message.to_owned(),
            location,
        );
    }

    fn capture(
        &self,
        tags: RequestTags<'_>,
        message: String,
        kind: &str,
        value: String,
        location: Option<&str>,
    ) {
        let mut tag_map = BTreeMap::new();
        tag_map.insert("request_id".to_owned(), tags.request_id.to_owned());
        tag_map.insert("route".to_owned(), tags.route.to_owned());
        tag_map.insert("http.method".to_owned(), tags.method.to_owned());
        tag_map.insert("http.status_code".to_owned(), tags.status.to_string());
        let mut extra = BTreeMap::new();
        if let Some(at) = location {
            extra.insert("location".to_owned(), at.into());
        }
        let event = Event {
            level: Level::Error,
            message: Some(message),
            transaction: Some(format!("{} {}", tags.method, tags.route)),
            tags: tag_map,
            extra,
            exception: Values {
                values: vec![Exception {
                    ty: kind.to_owned(),
                    value: Some(value),
                    ..Exception::default()
                }],
            },
            ..Event::default()
        };
        self.client.capture_event(event, None);
    }

    /// Sends what is queued, waiting at most `timeout`; whether everything went.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.client.flush(Some(timeout))
    }
}

/// The scrubbing of every event: texts scrubbed ([`scrub`]) but a panic's source location;
/// request, user and breadcrumb data dropped (the reports never set them; an integration
/// might).
pub fn scrub_event(mut event: Event<'static>) -> Event<'static> {
    event.message = event.message.map(|m| scrub(&m));
    if let Some(entry) = event.logentry.as_mut() {
        entry.message = scrub(&entry.message);
        entry.params.clear();
    }
    for e in &mut event.exception.values {
        e.value = e.value.as_deref().map(scrub);
    }
    for (k, v) in &mut event.extra {
        // A panic's source location, which the hook wrote itself.
        if k == "location" {
            continue;
        }
        if let Some(s) = v.as_str() {
            *v = scrub(s).into();
        }
    }
    for crumb in &mut event.breadcrumbs.values {
        crumb.message = crumb.message.as_deref().map(scrub);
        crumb.data.clear();
    }
    event.request = None;
    event.user = None;
    event
}

/// `text` with credentials replaced by `[redacted]`: whatever follows `Bearer `, and every run
/// of 24 or more token-like characters (letters, digits, `-_.:+/=~`) that mixes letters and
/// digits. Request ids (21 characters) and route templates survive; UUIDs do not.
pub fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let mut after_bearer = false;
    let flush = |run: &mut String, out: &mut String, after_bearer: &mut bool| {
        if run.is_empty() {
            return;
        }
        let letters = run.chars().any(|c| c.is_ascii_alphabetic());
        let digits = run.chars().any(|c| c.is_ascii_digit());
        if *after_bearer || (run.len() >= 24 && letters && digits) {
            out.push_str("[redacted]");
        } else {
            out.push_str(run);
        }
        *after_bearer = run.eq_ignore_ascii_case("bearer");
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || "-_.:+/=~".contains(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out, &mut after_bearer);
            if !c.is_whitespace() {
                after_bearer = false;
            }
            out.push(c);
        }
    }
    flush(&mut run, &mut out, &mut after_bearer);
    out
}

thread_local! {
    /// Where the last panic on this thread happened (the hook writes, the request's catch
    /// reads).
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Whether this thread is serving a request (whose panic the request reports).
    static IN_REQUEST: Cell<bool> = const { Cell::new(false) };
}

/// The reporter of panics outside requests (background tasks): the first one set.
static PROCESS_REPORTER: OnceLock<Arc<Reporter>> = OnceLock::new();

/// Reports panics outside requests to `reporter` (the server's; the first call wins).
pub fn report_background_panics(reporter: &Arc<Reporter>) {
    let _ = PROCESS_REPORTER.set(Arc::clone(reporter));
}

/// Chains a hook before the current one: it notes each panic's location for the request that
/// catches it, and reports panics outside requests.
fn install_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let location = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()));
            if IN_REQUEST.with(Cell::get) {
                LAST_PANIC.with(|p| *p.borrow_mut() = location);
            } else if let Some(r) = PROCESS_REPORTER.get() {
                let message = panic_message(info.payload());
                let tags = RequestTags {
                    request_id: "",
                    method: "",
                    route: "",
                    status: 0,
                };
                let thread = std::thread::current();
                r.capture(
                    tags,
                    format!("panic in {}", thread.name().unwrap_or("a thread")),
                    "panic",
                    message,
                    location.as_deref(),
                );
            }
            previous(info);
        }));
    });
}

/// Marks this thread as serving a request while `f` runs (see [`take_panic_location`]).
pub fn in_request<T>(f: impl FnOnce() -> T) -> T {
    let was = IN_REQUEST.with(|r| r.replace(true));
    let out = f();
    IN_REQUEST.with(|r| r.set(was));
    out
}

/// The location of the last panic on this thread caught inside [`in_request`].
pub fn take_panic_location() -> Option<String> {
    LAST_PANIC.with(|p| p.borrow_mut().take())
}

/// The message of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_owned())
}

/// Makes [`HttpTransport`]s.
struct HttpTransportFactory;

impl TransportFactory for HttpTransportFactory {
    fn create_transport(&self, options: &ClientOptions) -> Arc<dyn Transport> {
        match options.dsn.clone() {
            Some(dsn) => Arc::new(HttpTransport::start(dsn, options.user_agent.to_string())),
            None => Arc::new(NoTransport),
        }
    }
}

struct NoTransport;

impl Transport for NoTransport {
    fn send_envelope(&self, _: Envelope) {}
}

/// Envelopes queued (at most [`QUEUE`]; more are dropped) and posted one at a time from a
/// thread of their own.
struct HttpTransport {
    queue: Mutex<Option<SyncSender<Envelope>>>,
    pending: Arc<(Mutex<usize>, Condvar)>,
}

const QUEUE: usize = 64;

impl HttpTransport {
    fn start(dsn: Dsn, user_agent: String) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let pending = Arc::new((Mutex::new(0usize), Condvar::new()));
        let done = Arc::clone(&pending);
        let spawned = std::thread::Builder::new()
            .name("sentry-transport".into())
            .spawn(move || post_all(&dsn, &user_agent, &rx, &done));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "sentry: cannot start the transport thread; not reporting");
            return Self {
                queue: Mutex::new(None),
                pending,
            };
        }
        Self {
            queue: Mutex::new(Some(tx)),
            pending,
        }
    }
}

fn post_all(
    dsn: &Dsn,
    user_agent: &str,
    rx: &Receiver<Envelope>,
    pending: &(Mutex<usize>, Condvar),
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::warn!(error = %e, "sentry: no runtime for the transport; not reporting");
            return;
        }
    };
    // The client's connector needs the runtime's context to be built.
    let _context = runtime.enter();
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "sentry: no HTTP client; not reporting");
            return;
        }
    };
    let url = dsn.envelope_api_url().to_string();
    let auth = dsn.to_auth(Some(user_agent)).to_string();
    while let Ok(envelope) = rx.recv() {
        let mut body = Vec::new();
        if envelope.to_writer(&mut body).is_ok() {
            let sent = runtime.block_on(
                client
                    .post(&url)
                    .header("X-Sentry-Auth", &auth)
                    .header("Content-Type", "application/x-sentry-envelope")
                    .body(body)
                    .send(),
            );
            match sent {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => tracing::debug!(status = r.status().as_u16(), "sentry: envelope refused"),
                Err(e) => tracing::debug!(error = %e, "sentry: envelope not sent"),
            }
        }
        let (count, cv) = pending;
        let mut n = count.lock().unwrap_or_else(PoisonError::into_inner);
        *n = n.saturating_sub(1);
        cv.notify_all();
    }
}

impl Transport for HttpTransport {
    fn send_envelope(&self, envelope: Envelope) {
        let queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(tx) = queue.as_ref() else { return };
        let (count, _) = &*self.pending;
        *count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = tx.try_send(envelope) {
            let mut n = count.lock().unwrap_or_else(PoisonError::into_inner);
            *n = n.saturating_sub(1);
        }
    }

    fn flush(&self, timeout: Duration) -> bool {
        let (count, cv) = &*self.pending;
        let guard = count.lock().unwrap_or_else(PoisonError::into_inner);
        let (n, _) = cv
            .wait_timeout_while(guard, timeout, |n| *n > 0)
            .unwrap_or_else(PoisonError::into_inner);
        *n == 0
    }

    fn shutdown(&self, timeout: Duration) -> bool {
        let flushed = self.flush(timeout);
        // Dropping the sender ends the thread once the queue is empty.
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        flushed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_scrubbed_and_ids_survive() {
        let token = "msop_3f9a0c1d2e3f4a5b6c7d8e9f0a1b2c3d";
        let text = format!(
            "failed for {token} with Authorization: Bearer abc and 123456789:LEAKdeadbeef0123456789abcdef; request 1a2b3c4d-000000000001 on /tenants/{{id}}"
        );
        let s = scrub(&text);
        assert!(!s.contains(token), "{s}");
        assert!(!s.contains("abc and"), "the bearer credential: {s}");
        assert!(!s.contains("LEAK"), "{s}");
        assert!(s.contains("1a2b3c4d-000000000001"), "{s}");
        assert!(s.contains("/tenants/{id}"), "{s}");
        assert!(s.contains("Authorization: Bearer [redacted]"), "{s}");
        assert_eq!(scrub("no such table: tenants"), "no such table: tenants");
    }

    #[test]
    fn events_lose_request_and_user_and_keep_tags() {
        let mut event = Event {
            message: Some("key sk_live_0123456789abcdefghijKLMN leaked".into()),
            request: Some(sentry::protocol::Request {
                data: Some("{\"password\":\"hunter2\"}".into()),
                ..Default::default()
            }),
            ..Event::default()
        };
        event.tags.insert("request_id".into(), "abc".into());
        let e = scrub_event(event);
        assert!(e.request.is_none());
        assert_eq!(e.message.as_deref(), Some("key [redacted] leaked"));
        assert_eq!(e.tags.get("request_id").map(String::as_str), Some("abc"));
    }
}
