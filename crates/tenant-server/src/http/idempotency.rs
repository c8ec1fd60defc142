//! The `Idempotency-Key` header on creating `POST`s (the rules are `tenant_service::idempotency`):
//! extractors that read the header with the body ([`OnceJson`], [`OnceKey`]), and [`respond`],
//! which replays a stored answer with `Idempotent-Replayed: true` or runs the use case with its
//! ticket and answers what it stored.

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, ContentType, LOCATION};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tenant_service::ServiceResult;
use tenant_service::idempotency::{Answer, Begin, IdempotencyKey, OnceRequest, Render, Ticket};
use tenant_service::principal::Principal;

use super::error::ApiError;
use super::extract::{json_body, parse_json};
use crate::state::AppState;

/// The request header.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// The answer header of a replay.
pub const IDEMPOTENT_REPLAYED: &str = "Idempotent-Replayed";

/// The header in the OpenAPI document of the routes that take it.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyKeyHeader {
    /// Makes a retry safe: 1–255 printable ASCII characters, unique per operation. A retry with
    /// the same key and body answers the first answer again (`Idempotent-Replayed: true`);
    /// another body is 422 `idempotency_key_reused`; a retry while the first runs is 409
    /// `idempotency_key_in_flight`.
    #[serde(rename = "Idempotency-Key")]
    pub idempotency_key: Option<String>,
}

/// The keyed request of `req` with `body`, if it carries an `Idempotency-Key`.
fn once_request(req: &HttpRequest, body: &[u8]) -> Result<Option<OnceRequest>, ApiError> {
    let mut values = req.headers().get_all(IDEMPOTENCY_KEY);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::from(
            tenant_service::ServiceError::InvalidIdempotencyKey(
                "send one Idempotency-Key header, not several".into(),
            ),
        ));
    }
    let key = IdempotencyKey::parse(value.as_bytes())?;
    let principal = req
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or(ApiError::Unauthorized)?;
    Ok(Some(OnceRequest::new(
        &principal,
        req.method().as_str(),
        req.path(),
        key,
        body,
    )))
}

/// A JSON body of type `T` and the request's `Idempotency-Key`, fingerprinted with the body's
/// bytes.
#[derive(Debug)]
pub struct OnceJson<T>(pub T, pub Option<OnceRequest>);

impl<T: DeserializeOwned + 'static> FromRequest for OnceJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = json_body(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let bytes = body.await?;
            // The key is checked first: a malformed key is refused whatever the body.
            let once = once_request(&req, &bytes)?;
            Ok(OnceJson(parse_json(&bytes)?, once))
        })
    }
}

/// The `Idempotency-Key` of a request without a body.
#[derive(Debug)]
pub struct OnceKey(pub Option<OnceRequest>);

impl FromRequest for OnceKey {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(once_request(req, b"").map(OnceKey))
    }
}

/// An answer to store: `status`, the JSON of `body`, and where the created resource is.
pub fn answer<B: Serialize>(status: StatusCode, location: Option<String>, body: &B) -> Answer {
    Answer {
        status: status.as_u16(),
        location,
        body: serde_json::to_vec(body).unwrap_or_default(),
        secret: false,
    }
}

/// The same for an answer that carries a secret shown once: stored sealed.
pub fn secret_answer<B: Serialize>(
    status: StatusCode,
    location: Option<String>,
    body: &B,
) -> Answer {
    Answer {
        secret: true,
        ..answer(status, location, body)
    }
}

fn response(answer: Answer, replayed: bool) -> HttpResponse {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut resp = HttpResponse::build(status);
    resp.content_type(ContentType::json());
    if let Some(location) = answer.location {
        resp.insert_header((LOCATION, location));
    }
    if replayed {
        resp.insert_header((IDEMPOTENT_REPLAYED, "true"));
    }
    if answer.secret {
        // A secret shown once is not for caches.
        resp.insert_header((CACHE_CONTROL, "no-store"));
    }
    resp.body(answer.body)
}

/// Answers a creating request: the stored answer of its key again, or `run` with the key's
/// ticket (`None` without a key) and `render`'s answer of its result, which the use case stored
/// with its effect.
pub async fn respond<T, F, Fut>(
    state: &AppState,
    once: Option<OnceRequest>,
    render: impl Fn(&T) -> Answer + Send + Sync + 'static,
    run: F,
) -> Result<HttpResponse, ApiError>
where
    T: 'static,
    F: FnOnce(Option<Ticket<T>>) -> Fut,
    Fut: Future<Output = ServiceResult<T>>,
{
    let render: Render<T> = Arc::new(render);
    match state.control.begin_once(once, Arc::clone(&render)).await? {
        Begin::Replay(answer) => Ok(response(answer, true)),
        Begin::Run(ticket) => {
            let out = run(ticket).await?;
            Ok(response(render(&out), false))
        }
    }
}
