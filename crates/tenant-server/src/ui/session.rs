//! The browser session of the dashboard and the portal, and the layer every page goes through.
//!
//! A session is the existing password login's token pair kept in cookies: the access token
//! (a JWT, `msk_session`) and the refresh token (`msk_refresh`), both `HttpOnly`,
//! `SameSite=Lax`, `Path=/` and `Secure` unless `SAAS_UI_SECURE_COOKIES=false`. When the access
//! token has expired the layer exchanges the refresh token (the API's `POST /auth/refresh`
//! use case) and sets the new pair. Only a user's session counts: a service token or API key
//! placed in the cookie is ignored.
//!
//! CSRF: a random token in the `msk_csrf` cookie must come back in every form's `csrf` field
//! (double submit, compared in constant time; [`crate::ui::form`]), and a state-changing
//! request whose `Origin` names another host is refused. Every answer carries a strict
//! Content-Security-Policy (scripts and styles only from this server, no inline code, no
//! framing) and `Cache-Control: no-store`.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use rand::RngCore;
use tenant_core::Secret;
use tenant_service::identity::sessions::TokenPair;
use tenant_service::principal::{ActorRef, Principal};
use tenant_service::tenants::SlugTarget;

use crate::http::request_log::audit_context;
use crate::settings::ui::UiSettings;
use crate::state::AppState;
use crate::ui::context::UiContext;
use crate::ui::host::{self, HostKind, Site};
use crate::ui::layout;

/// The access token's cookie.
pub const SESSION_COOKIE: &str = "msk_session";
/// The refresh token's cookie.
pub const REFRESH_COOKIE: &str = "msk_refresh";
/// The CSRF token's cookie.
pub const CSRF_COOKIE: &str = "msk_csrf";

/// The Content-Security-Policy of every page: nothing but this server's own script and
/// stylesheet, forms posting only here, no framing, no plugins.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value: `HttpOnly; SameSite=Lax; Path=/`, `Secure` when configured;
/// `max_age` `None` for a browser-session cookie, `Some(0)` to delete it.
pub fn set_cookie(name: &str, value: &str, max_age: Option<u64>, secure: bool) -> String {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// The cookies that hold a token pair.
pub fn session_cookies(pair: &TokenPair, secure: bool) -> [String; 2] {
    [
        set_cookie(SESSION_COOKIE, pair.access_token.expose(), None, secure),
        set_cookie(
            REFRESH_COOKIE,
            pair.refresh_token.expose(),
            Some(pair.refresh_expires_in),
            secure,
        ),
    ]
}

/// The cookies that end a session.
pub fn cleared_cookies(secure: bool) -> [String; 2] {
    [
        set_cookie(SESSION_COOKIE, "", Some(0), secure),
        set_cookie(REFRESH_COOKIE, "", Some(0), secure),
    ]
}

/// A new random CSRF token (32 bytes, hex).
fn new_csrf_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two strings in time independent of where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Whether a user (not a service token or API key) holds this principal: only users log in.
fn is_user(p: &Principal) -> bool {
    matches!(p.actor(), ActorRef::User(_) | ActorRef::OperatorUser(_))
}

/// Whether the request's `Origin`, when it has one, is this host: a cross-site form post is
/// refused even before its CSRF token is checked.
fn same_origin(req: &HttpRequest, settings: &UiSettings) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin_authority = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/').to_ascii_lowercase());
    match (origin_authority, host::authority(req, settings)) {
        (Some(o), Some(h)) => o == h,
        _ => false,
    }
}

/// The layer in front of every page: security headers, the site of the host (an unknown
/// tenant's host is a 404 page), the CSRF cookie, the cross-origin check and the session.
pub async fn ui_layer(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let settings = req
        .app_data::<web::Data<UiSettings>>()
        .map(|s| s.get_ref().clone())
        .unwrap_or_default();
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        let res = HttpResponse::InternalServerError().finish();
        return Ok(req.into_response(res).map_into_right_body());
    };
    let secure = settings.secure_cookies;
    let mut set_cookies: Vec<String> = Vec::new();

    // The site.
    let authority = host::authority(req.request(), &settings);
    let site = match host::classify(authority.as_deref(), &settings) {
        HostKind::Admin => Site::Admin,
        HostKind::Tenant(slug) => match state.control.resolve_slug(&slug).await {
            Ok(SlugTarget::Tenant(tenant)) => Site::Tenant(tenant),
            Ok(SlugTarget::Moved(to)) => {
                let res = host::moved(req.request(), &settings, &to);
                return Ok(req.into_response(with_headers(res)).map_into_right_body());
            }
            Ok(SlugTarget::Unknown) => {
                let res = layout::plain_error(
                    actix_web::http::StatusCode::NOT_FOUND,
                    "No such tenant",
                    "There is no tenant at this address.",
                );
                return Ok(req.into_response(with_headers(res)).map_into_right_body());
            }
            Err(e) => {
                let res = layout::service_error_page(e);
                return Ok(req.into_response(with_headers(res)).map_into_right_body());
            }
        },
    };

    // Cross-origin state changes.
    if req.method() != Method::GET
        && req.method() != Method::HEAD
        && !same_origin(req.request(), &settings)
    {
        let res = layout::plain_error(
            actix_web::http::StatusCode::FORBIDDEN,
            "Request refused",
            "This form was sent from another site.",
        );
        return Ok(req.into_response(with_headers(res)).map_into_right_body());
    }

    // The CSRF token.
    let csrf = match cookie(req.request(), CSRF_COOKIE) {
        Some(t) if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) => t,
        _ => {
            let t = new_csrf_token();
            set_cookies.push(set_cookie(CSRF_COOKIE, &t, None, secure));
            t
        }
    };

    // The session.
    let mut principal = None;
    if let Some(access) = cookie(req.request(), SESSION_COOKIE) {
        principal = state
            .control
            .authenticate(&access)
            .await
            .ok()
            .flatten()
            .filter(is_user);
    }
    if principal.is_none()
        && let Some(refresh) = cookie(req.request(), REFRESH_COOKIE)
    {
        let ctx = audit_context(req.request(), "anonymous", None);
        match state.control.refresh(ctx, Secret::new(refresh)).await {
            Ok(pair) => {
                principal = state
                    .control
                    .authenticate(pair.access_token.expose())
                    .await
                    .ok()
                    .flatten()
                    .filter(is_user);
                set_cookies.extend(session_cookies(&pair, secure));
            }
            Err(_) => set_cookies.extend(cleared_cookies(secure)),
        }
    }
    if let Some(p) = &principal {
        // The API's extractors (`Actor`, `Caller`) read it from here.
        req.extensions_mut().insert(p.clone());
    }
    req.extensions_mut().insert(UiContext {
        principal,
        csrf,
        site,
    });

    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    for c in set_cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            headers.append(header::SET_COOKIE, v);
        }
    }
    security_headers(headers);
    Ok(res.map_into_left_body())
}

/// Adds the security headers to a response built before the handler.
fn with_headers(mut res: HttpResponse) -> HttpResponse {
    security_headers(res.headers_mut());
    res
}

/// CSP, no framing, no sniffing, no caching, same-origin referrers.
fn security_headers(headers: &mut actix_web::http::header::HeaderMap) {
    let set = |h: &mut actix_web::http::header::HeaderMap, name: &'static str, value| {
        h.insert(
            header::HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    };
    set(headers, "content-security-policy", CSP);
    set(headers, "x-frame-options", "DENY");
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "referrer-policy", "same-origin");
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, "cache-control", "no-store");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_carry_their_attributes() {
        let c = set_cookie("a", "b", Some(60), true);
        assert_eq!(c, "a=b; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure");
        assert!(!set_cookie("a", "b", None, false).contains("Secure"));
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "ab"));
        assert_eq!(new_csrf_token().len(), 64);
    }
}
