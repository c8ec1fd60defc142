//! A webhook receiver on 127.0.0.1 port 0: records every request and answers from a script.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Wait this long before answering.
    pub delay: Duration,
    /// A `Retry-After` header.
    pub retry_after: Option<String>,
    /// The body.
    pub body: String,
}

impl Reply {
    /// An immediate answer with this status and a short body.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            delay: Duration::ZERO,
            retry_after: None,
            body: format!("status {status}"),
        }
    }

    /// Answers after `delay`.
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// With a `Retry-After` header.
    pub fn retry_after(mut self, value: &str) -> Self {
        self.retry_after = Some(value.to_owned());
        self
    }
}

/// A request the receiver got.
#[derive(Debug, Clone)]
pub struct Captured {
    /// Headers, lowercased names (last value wins).
    pub headers: HashMap<String, String>,
    /// The exact body.
    pub body: Vec<u8>,
    /// When the request arrived.
    pub received_at: std::time::Instant,
}

impl Captured {
    /// A header's value, or "".
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Default)]
struct Inner {
    requests: Vec<Captured>,
    script: VecDeque<Reply>,
    default: Option<Reply>,
}

/// The running receiver.
pub struct WebhookReceiver {
    /// `http://127.0.0.1:<port>/hook`.
    pub url: String,
    /// The port.
    pub port: u16,
    inner: Arc<Mutex<Inner>>,
    handle: actix_web::dev::ServerHandle,
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    inner: web::Data<Arc<Mutex<Inner>>>,
) -> HttpResponse {
    let reply = {
        let mut inner = inner.lock().unwrap();
        inner.requests.push(Captured {
            headers: req
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        v.to_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
            received_at: std::time::Instant::now(),
        });
        inner
            .script
            .pop_front()
            .or_else(|| inner.default.clone())
            .unwrap_or_else(|| Reply::status(200))
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut resp =
        HttpResponse::build(actix_web::http::StatusCode::from_u16(reply.status).unwrap());
    if let Some(r) = &reply.retry_after {
        resp.insert_header(("Retry-After", r.as_str()));
    }
    resp.body(reply.body)
}

/// Serves every request with `handler` (sharing `state` as `web::Data`) on 127.0.0.1, a free
/// port, with `workers` threads; returns the port and the server's handle.
pub(crate) fn serve_loopback<T, F, Args>(
    state: T,
    workers: usize,
    handler: F,
) -> (u16, actix_web::dev::ServerHandle)
where
    T: Send + Sync + 'static,
    F: actix_web::Handler<Args> + Clone + Send + 'static,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .default_service(web::to(handler.clone()))
    })
    .workers(workers)
    .shutdown_timeout(0)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let port = server.addrs()[0].port();
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    (port, handle)
}

impl WebhookReceiver {
    /// Starts a receiver answering 200 unless scripted otherwise.
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let (port, handle) = serve_loopback(inner.clone(), 2, receive);
        Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            port,
            inner,
            handle,
        }
    }

    /// Queues answers for the next requests, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.lock().unwrap().script.extend(replies);
    }

    /// The answer once the script is used up (default: 200).
    pub fn set_default(&self, reply: Reply) {
        self.inner.lock().unwrap().default = Some(reply);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Captured> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// How many requests so far.
    pub fn count(&self) -> usize {
        self.inner.lock().unwrap().requests.len()
    }

    /// Stops the receiver.
    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}
