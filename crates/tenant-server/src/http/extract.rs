//! Request extractors that answer bad input with the API's JSON errors: JSON bodies, queries,
//! path segments, and the caller (principal and audit actor) set by authentication.
//!
//! actix's own `Json` and `Query` extractors answer in plain text and echo serde's messages, which
//! can quote the rejected value (a token sent in the wrong field). These name the field and the
//! expected type, never the value.

use std::future::{Future, Ready, ready};
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::json;
use tenant_core::{ChannelKind, TenantId, ValidationError};
use tenant_service::principal::Principal;
use tenant_store::audit::AuditContext;
use uuid::Uuid;

use super::error::ApiError;
use super::request_log::audit_context;

/// The largest request body, shared through app data.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// A JSON request body of type `T`.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = json_body(req, payload);
        Box::pin(async move { parse_json(&body.await?).map(ApiJson) })
    }
}

/// Reads a JSON request body (within the body limit) as bytes.
pub fn json_body(
    req: &HttpRequest,
    payload: &mut Payload,
) -> impl Future<Output = Result<Bytes, ApiError>> + 'static {
    let limit = req.app_data::<BodyLimit>().map_or(64 * 1024, |l| l.0);
    let json_type = match req.headers().get(CONTENT_TYPE).map(|v| v.to_str()) {
        // curl -d without a content type: accept, the body is still parsed as JSON.
        None => true,
        Some(Ok(ct)) => {
            let essence = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            essence == "application/json" || essence.ends_with("+json")
        }
        Some(Err(_)) => false,
    };
    let body = Bytes::from_request(req, payload);
    async move {
        if !json_type {
            return Err(ApiError::UnsupportedMediaType);
        }
        body.await.map_err(|e| match e.as_error::<PayloadError>() {
            Some(PayloadError::Overflow) => ApiError::PayloadTooLarge { limit },
            _ => ApiError::BadRequest {
                code: "invalid_body",
                message: "the request body could not be read".into(),
                details: json!({}),
            },
        })
    }
}

/// Parses a JSON body, reporting the path of the offending field without quoting values. Anything
/// but whitespace after the value is an error, as `serde_json::from_slice` would report.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every body is an object: serde would also read a struct from an array of its fields.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ApiError::BadRequest {
            code: "invalid_json",
            message: "the body must be a JSON object".into(),
            details: json!({"field": null}),
        });
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = sanitize_serde_message(&inner.to_string());
        let field = (path != "." && !path.is_empty()).then_some(path);
        let message = match &field {
            Some(f) => format!("{f}: {message}"),
            None => message,
        };
        ApiError::BadRequest {
            code: "invalid_json",
            message,
            details: json!({"field": field, "line": inner.line(), "column": inner.column()}),
        }
    })?;
    de.end().map_err(|e| ApiError::BadRequest {
        code: "invalid_json",
        message: "unexpected characters after the JSON value".into(),
        details: json!({"field": null, "line": e.line(), "column": e.column()}),
    })?;
    Ok(value)
}

/// Keeps the part of a serde message that says what was expected; drops quoted input.
fn sanitize_serde_message(msg: &str) -> String {
    let msg = msg.split(" at line ").next().unwrap_or(msg);
    let typed = ["invalid type", "invalid value", "invalid length"]
        .iter()
        .any(|p| msg.starts_with(p));
    if let Some((_, expected)) = msg.split_once(", expected ") {
        if typed {
            return format!("wrong type, expected {expected}");
        }
        if msg.starts_with("unknown variant") {
            return format!("unknown value, expected {expected}");
        }
    }
    msg.to_owned()
}

/// Query parameters of type `T`.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned> FromRequest for ApiQuery<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = actix_web::web::Query::<T>::from_query(req.query_string())
            .map(|q| ApiQuery(q.into_inner()))
            .map_err(|e| {
                let message = e.to_string();
                let message = message
                    .strip_prefix("Query deserialize error: ")
                    .unwrap_or(&message);
                ApiError::BadRequest {
                    code: "invalid_query",
                    message: sanitize_serde_message(message),
                    details: json!({}),
                }
            });
        std::future::ready(result)
    }
}

/// The caller of a mutating request, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor(pub AuditContext);

impl FromRequest for Actor {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(actor) = req
            .extensions()
            .get::<Principal>()
            .map(|p| p.actor().clone())
        else {
            return ready(Err(ApiError::Unauthorized));
        };
        ready(Ok(Actor(audit_context(req, actor.kind(), actor.id()))))
    }
}

/// The authenticated principal of a request (set by the authentication middleware).
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Principal>()
                .cloned()
                .map(Caller)
                .ok_or(ApiError::Unauthorized),
        )
    }
}

fn bad_path(field: &'static str, e: ValidationError) -> ApiError {
    ApiError::BadRequest {
        code: "invalid_path",
        message: format!("{field}: {}", e.message),
        details: json!({ "field": field }),
    }
}

/// Parses the `{id}` path segment.
pub fn parse_tenant_id(raw: &str) -> Result<TenantId, ApiError> {
    raw.parse().map_err(|e| bad_path("id", e))
}

/// Parses the `{kind}` path segment.
pub fn parse_kind(raw: &str) -> Result<ChannelKind, ApiError> {
    raw.parse().map_err(|e| bad_path("kind", e))
}

/// Parses a UUID path segment (`{wid}`, `{did}`, …).
pub fn parse_uuid(field: &'static str, raw: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(raw).map_err(|_| ApiError::BadRequest {
        code: "invalid_path",
        message: format!("{field}: is not a UUID"),
        details: json!({ "field": field }),
    })
}

/// An optional whole number that may be written `1939` or `1939.0`: JSON Schema's `integer`,
/// which the OpenAPI document promises, counts both (`#[serde(default, deserialize_with =
/// "whole_number")]`). A fraction, or a number out of `T`'s range, is refused.
pub fn whole_number<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::de::Error;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let whole = match (n.as_i64(), n.as_f64()) {
        (Some(i), _) => Some(i),
        // Within ±2^53 every whole f64 is exact, and converts without loss.
        (None, Some(f)) if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 => Some(f as i64),
        _ => None,
    };
    whole
        .and_then(|i| T::try_from(i).ok())
        .map(Some)
        .ok_or_else(|| D::Error::custom("expected a whole number in range"))
}

/// [`whole_number`] where an explicit `null` means something: absent is `None`, `null` is
/// `Some(None)` (`#[serde(default, deserialize_with = "nullable_whole_number")]`).
pub fn nullable_whole_number<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    whole_number(d).map(Some)
}

/// An optional nested object of type `T`, which must be written as a JSON object: serde would
/// also read a struct from an array of its fields (`#[serde(default, deserialize_with =
/// "nested_object")]`).
pub fn nested_object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    use serde::de::Error;
    match Option::<serde_json::Map<String, serde_json::Value>>::deserialize(d)? {
        None => Ok(None),
        Some(map) => serde_json::from_value(serde_json::Value::Object(map))
            .map(Some)
            .map_err(|e| D::Error::custom(sanitize_serde_message(&e.to_string()))),
    }
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`) in a request
/// body (`#[serde(default, deserialize_with = "double_option")]`).
pub fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        enabled: bool,
    }

    #[test]
    fn type_errors_name_the_field_but_not_the_value() {
        let err = parse_json::<Body>(br#"{"enabled": "xoxb-secret-value"}"#).unwrap_err();
        let text = format!("{err}");
        assert!(text.contains("enabled"), "{text}");
        assert!(!text.contains("xoxb"), "{text}");
    }

    #[test]
    fn unknown_fields_are_named() {
        let err = parse_json::<Body>(br#"{"enabled": true, "tenantId": 1}"#).unwrap_err();
        assert!(format!("{err}").contains("tenantId"));
    }

    #[test]
    fn trailing_characters_are_a_bad_request() {
        assert!(parse_json::<Body>(b"{\"enabled\": true}  \n").is_ok());
        let err = parse_json::<Body>(b"{\"enabled\": true} trailing").unwrap_err();
        assert!(matches!(
            err,
            ApiError::BadRequest {
                code: "invalid_json",
                ..
            }
        ));
    }

    #[derive(Debug, Deserialize)]
    struct Count {
        #[serde(default, deserialize_with = "whole_number")]
        n: Option<u32>,
    }

    #[test]
    fn whole_numbers_may_be_written_as_floats() {
        let n = |body: &str| parse_json::<Count>(body.as_bytes()).map(|c| c.n);
        assert_eq!(n(r#"{"n": 1939}"#).ok(), Some(Some(1939)));
        assert_eq!(n(r#"{"n": 1939.0}"#).ok(), Some(Some(1939)));
        assert_eq!(n(r#"{"n": null}"#).ok(), Some(None));
        assert_eq!(n("{}").ok(), Some(None));
        assert!(n(r#"{"n": 1.5}"#).is_err());
        assert!(n(r#"{"n": -1}"#).is_err());
        assert!(n(r#"{"n": 1e300}"#).is_err());
        assert!(n(r#"{"n": "1"}"#).is_err());
    }

    #[derive(Debug, Deserialize)]
    struct Outer {
        #[serde(default, deserialize_with = "nested_object")]
        #[allow(dead_code)]
        inner: Option<Body>,
    }

    #[test]
    fn a_nested_object_is_not_an_array() {
        assert!(parse_json::<Outer>(br#"{"inner": {"enabled": true}}"#).is_ok());
        assert!(parse_json::<Outer>(br#"{"inner": null}"#).is_ok());
        assert!(parse_json::<Outer>(br#"{"inner": [true]}"#).is_err());
        let err = parse_json::<Outer>(br#"{"inner": {"enabled": "xoxb-secret"}}"#).unwrap_err();
        assert!(!format!("{err}").contains("xoxb"), "{err}");
    }

    #[test]
    fn an_array_is_not_a_body() {
        let err = parse_json::<Body>(b" [true]").unwrap_err();
        assert!(matches!(
            err,
            ApiError::BadRequest {
                code: "invalid_json",
                ..
            }
        ));
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        let err = parse_json::<Body>(b"{not json").unwrap_err();
        assert!(matches!(
            err,
            ApiError::BadRequest {
                code: "invalid_json",
                ..
            }
        ));
    }
}
