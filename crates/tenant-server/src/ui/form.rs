//! Form bodies (`application/x-www-form-urlencoded`) whose `csrf` field must equal the CSRF
//! cookie: a form posted without it, or from a page of another session, is refused (403).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::http::error::ApiError;
use crate::http::extract::BodyLimit;
use crate::ui::context::UiContext;
use crate::ui::error::UiError;
use crate::ui::session::same_token;

/// A form with its CSRF token only (a button: log out, delete, rotate).
#[derive(Debug, Deserialize)]
pub struct Empty {}

/// A form of type `T` that carried the session's CSRF token.
#[derive(Debug)]
pub struct UiForm<T>(pub T);

#[derive(Deserialize)]
struct CsrfField {
    csrf: Option<String>,
}

impl<T: DeserializeOwned + 'static> FromRequest for UiForm<T> {
    type Error = UiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, UiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req.app_data::<BodyLimit>().map_or(64 * 1024, |l| l.0);
        let expected = req.extensions().get::<UiContext>().map(|c| c.csrf.clone());
        let body = Bytes::from_request(req, payload);
        Box::pin(async move {
            let bytes = body
                .await
                .map_err(|_| UiError::Api(ApiError::PayloadTooLarge { limit }))?;
            let given = serde_urlencoded::from_bytes::<CsrfField>(&bytes)
                .ok()
                .and_then(|f| f.csrf);
            match (expected, given) {
                (Some(e), Some(g)) if same_token(&e, &g) => {}
                _ => return Err(UiError::Csrf),
            }
            serde_urlencoded::from_bytes::<T>(&bytes)
                .map(UiForm)
                .map_err(|e| {
                    UiError::Api(ApiError::BadRequest {
                        code: "invalid_form",
                        message: format!("the form could not be read: {e}"),
                        details: json!({}),
                    })
                })
        })
    }
}
