//! How a page handler fails: a redirect to the login page, or an error page built from the
//! API's error (status, code, message, the fields at fault).

use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpResponse, ResponseError};
use tenant_core::{ValidationError, ValidationErrors};
use tenant_service::ServiceError;

use crate::http::error::ApiError;
use crate::ui::layout;

/// A page handler's failure.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// Nobody is logged in: to the login page, then back to `next`.
    #[error("login required")]
    Login {
        /// The path to return to.
        next: String,
    },
    /// The page belongs elsewhere (an operator on the portal, a tenant user on the admin).
    #[error("see {0}")]
    Redirect(String),
    /// A form without the session's CSRF token.
    #[error("missing or wrong CSRF token")]
    Csrf,
    /// The API's error.
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<ServiceError> for UiError {
    fn from(e: ServiceError) -> Self {
        UiError::Api(e.into())
    }
}

impl From<ValidationError> for UiError {
    fn from(e: ValidationError) -> Self {
        UiError::Api(e.into())
    }
}

impl From<ValidationErrors> for UiError {
    fn from(e: ValidationErrors) -> Self {
        UiError::Api(e.into())
    }
}

/// What a page handler returns.
pub type UiResult = Result<HttpResponse, UiError>;

/// A `303 See Other` to `to` (after a form post, or to the right page).
pub fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, to))
        .finish()
}

/// Whether `next` is a local path safe to redirect to (not `//host`, not a scheme).
pub fn is_local_path(next: &str) -> bool {
    next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control())
}

impl ResponseError for UiError {
    fn status_code(&self) -> StatusCode {
        match self {
            UiError::Login { .. } | UiError::Redirect(_) => StatusCode::SEE_OTHER,
            UiError::Csrf => StatusCode::FORBIDDEN,
            UiError::Api(e) => e.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            UiError::Login { next } => {
                let mut to = "/login".to_owned();
                if is_local_path(next) && next != "/" {
                    to.push_str("?next=");
                    to.push_str(&percent_encode(next));
                }
                see_other(&to)
            }
            UiError::Redirect(to) => see_other(to),
            UiError::Csrf => layout::plain_error(
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form could not be verified (missing or stale security token). Reload the page and try again.",
            ),
            UiError::Api(e) => layout::api_error_page(e),
        }
    }
}

/// Percent-encodes everything but unreserved characters and `/`.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        assert!(is_local_path("/admin/tenants?q=a"));
        assert!(!is_local_path("//evil.example"));
        assert!(!is_local_path("/\\evil.example"));
        assert!(!is_local_path("https://evil.example"));
        assert_eq!(percent_encode("/a b?c=d&e"), "/a%20b%3Fc%3Dd%26e");
    }
}
