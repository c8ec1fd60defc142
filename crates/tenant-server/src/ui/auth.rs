//! Logging in and out of the dashboard and the portal, accepting an invite, and `/`, which
//! sends a browser to the right place (API clients keep their JSON answers).
//!
//! The login form calls the API's password login use case; the token pair it returns becomes
//! the session cookies ([`crate::ui::session`]). On a tenant's host the form logs in to that
//! tenant; elsewhere a blank tenant is an operator login.

use actix_web::http::StatusCode;
use actix_web::http::header::ACCEPT;
use actix_web::http::header::{HeaderValue, SET_COOKIE};
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;
use tenant_core::Secret;
use tenant_service::ServiceError;
use tenant_service::identity::login::LoginAttempt;
use tenant_service::identity::sessions::TokenPair;
use tenant_service::principal::Principal;

use crate::http::error::ApiError;
use crate::http::request_log::audit_context;
use crate::settings::ui::UiSettings;
use crate::state::AppState;
use crate::ui::context::UiContext;
use crate::ui::error::{UiResult, is_local_path, see_other};
use crate::ui::form::{Empty, UiForm};
use crate::ui::host::{self, HostKind, Site};
use crate::ui::layout::{self, csrf_field};
use crate::ui::session::{REFRESH_COOKIE, cleared_cookies, cookie, session_cookies};

/// Whether the client asks for HTML (a browser navigating).
pub fn wants_html(req: &HttpRequest) -> bool {
    req.headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// `GET /`: a browser goes to its dashboard (which sends it on to the login page); the API
/// answers as it always did.
pub async fn root(req: HttpRequest, settings: web::Data<UiSettings>) -> HttpResponse {
    if !wants_html(&req) {
        return HttpResponse::NotFound().json(serde_json::json!({
            "error": {"code": "not_found", "message": "no such route", "details": {}}
        }));
    }
    let authority = host::authority(&req, &settings);
    match host::classify(authority.as_deref(), &settings) {
        HostKind::Tenant(_) => see_other("/portal"),
        HostKind::Admin => see_other("/admin"),
    }
}

/// Where a principal lands after logging in.
fn home_of(p: &Principal) -> &'static str {
    match p {
        Principal::Tenant { .. } => "/portal",
        _ => "/admin",
    }
}

/// Query of the login page.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    notice: Option<String>,
}

/// The login form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    tenant: Option<String>,
    email: String,
    password: String,
    next: Option<String>,
}

struct LoginView<'a> {
    email: &'a str,
    tenant: &'a str,
    next: &'a str,
    error: Option<String>,
}

fn login_page(
    ctx: &UiContext,
    view: &LoginView<'_>,
    notice: Option<&str>,
    status: StatusCode,
) -> HttpResponse {
    let (heading, fixed_tenant) = match &ctx.site {
        Site::Tenant(t) => (
            format!("Log in to {}", t.name.as_str()),
            Some(t.slug.as_str().to_owned()),
        ),
        Site::Admin => ("Log in".to_owned(), None),
    };
    let content: Markup = html! {
        section class="card narrow" {
            h1 { (heading) }
            @if let Some(err) = &view.error {
                div class="alert" role="alert" { (err) }
            }
            form method="post" action="/login" class="stack" {
                (csrf_field(ctx))
                input type="hidden" name="next" value=(view.next);
                @if fixed_tenant.is_none() {
                    label for="tenant" { "Tenant " span class="muted" { "(slug; leave empty to log in as an operator)" } }
                    input id="tenant" name="tenant" type="text" autocomplete="organization" value=(view.tenant);
                }
                label for="email" { "Email" }
                input id="email" name="email" type="email" required autocomplete="username" value=(view.email);
                label for="password" { "Password" }
                input id="password" name="password" type="password" required autocomplete="current-password";
                button type="submit" class="primary" { "Log in" }
            }
            p class="muted" { "Invited? " a href="/invite" { "Set your password" } "." }
        }
    };
    let mut res = layout::page(ctx, "Log in", notice, content);
    *res.status_mut() = status;
    res
}

/// `GET /login`.
pub async fn login_form(ctx: UiContext, query: web::Query<LoginQuery>) -> HttpResponse {
    let next = query
        .next
        .as_deref()
        .filter(|n| is_local_path(n))
        .unwrap_or("");
    if let Some(p) = &ctx.principal {
        return see_other(if next.is_empty() { home_of(p) } else { next });
    }
    let view = LoginView {
        email: "",
        tenant: "",
        next,
        error: None,
    };
    login_page(&ctx, &view, query.notice.as_deref(), StatusCode::OK)
}

/// Sets the session cookies of `pair` on a redirect to `to`.
fn logged_in(pair: &TokenPair, settings: &UiSettings, to: &str) -> HttpResponse {
    let mut res = see_other(to);
    for c in session_cookies(pair, settings.secure_cookies) {
        if let Ok(v) = HeaderValue::from_str(&c) {
            res.headers_mut().append(SET_COOKIE, v);
        }
    }
    res
}

/// `POST /login`.
pub async fn login(
    req: HttpRequest,
    ctx: UiContext,
    state: web::Data<AppState>,
    settings: web::Data<UiSettings>,
    UiForm(form): UiForm<LoginForm>,
) -> UiResult {
    let tenant = match &ctx.site {
        Site::Tenant(t) => Some(t.slug.as_str().to_owned()),
        Site::Admin => form.tenant.clone(),
    };
    let next = form
        .next
        .as_deref()
        .filter(|n| is_local_path(n))
        .unwrap_or("");
    let failed = |error: String, status: StatusCode| {
        let view = LoginView {
            email: &form.email,
            tenant: form.tenant.as_deref().unwrap_or(""),
            next,
            error: Some(error),
        };
        Ok(login_page(&ctx, &view, None, status))
    };
    let attempt = match LoginAttempt::parse(tenant, &form.email, Secret::new(form.password.clone()))
    {
        Ok(a) => a,
        Err(e) => {
            return failed(
                format!("{}: {}", e.field, e.message),
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    let ctx_audit = audit_context(&req, "anonymous", None);
    let pair = match state.control.login(ctx_audit, attempt).await {
        Ok(pair) => pair,
        Err(e) => {
            let api = ApiError::from(e);
            let status = actix_web::ResponseError::status_code(&api);
            let message = match &api {
                ApiError::InvalidCredentials => "Invalid email or password.".to_owned(),
                ApiError::Throttled { retry_after_secs } => {
                    format!("Too many failed attempts. Try again in {retry_after_secs} seconds.")
                }
                other => other.body().error.message,
            };
            return failed(message, status);
        }
    };
    let principal = state
        .control
        .authenticate(pair.access_token.expose())
        .await?
        .ok_or(ServiceError::Unauthenticated)?;
    let to = if next.is_empty() {
        home_of(&principal)
    } else {
        next
    };
    Ok(logged_in(&pair, &settings, to))
}

/// `POST /logout`: ends the login session (its refresh token family) and clears the cookies.
pub async fn logout(
    req: HttpRequest,
    ctx: UiContext,
    state: web::Data<AppState>,
    settings: web::Data<UiSettings>,
    UiForm(_): UiForm<Empty>,
) -> HttpResponse {
    if let (Some(p), Some(refresh)) = (&ctx.principal, cookie(&req, REFRESH_COOKIE)) {
        let actor = p.actor();
        let audit = audit_context(&req, actor.kind(), actor.id());
        if let Err(e) = state.control.logout(audit, p, Secret::new(refresh)).await {
            tracing::debug!(error = %e, "logout: the session was already over");
        }
    }
    let mut res = see_other("/login?notice=logged_out");
    for c in cleared_cookies(settings.secure_cookies) {
        if let Ok(v) = HeaderValue::from_str(&c) {
            res.headers_mut().append(SET_COOKIE, v);
        }
    }
    res
}

/// Query of the invite page: the token from the invite link.
#[derive(Debug, Deserialize)]
pub struct InviteQuery {
    token: Option<String>,
}

/// The invite form.
#[derive(Debug, Deserialize)]
pub struct InviteForm {
    token: String,
    password: String,
}

fn invite_page(
    ctx: &UiContext,
    token: &str,
    error: Option<String>,
    status: StatusCode,
) -> HttpResponse {
    let content = html! {
        section class="card narrow" {
            h1 { "Set your password" }
            @if let Some(err) = &error {
                div class="alert" role="alert" { (err) }
            }
            form method="post" action="/invite" class="stack" {
                (csrf_field(ctx))
                label for="token" { "Invite token" }
                input id="token" name="token" type="text" required autocomplete="off" value=(token);
                label for="password" { "New password " span class="muted" { "(at least 12 characters)" } }
                input id="password" name="password" type="password" required minlength="12" autocomplete="new-password";
                button type="submit" class="primary" { "Set password and log in" }
            }
        }
    };
    let mut res = layout::page(ctx, "Set your password", None, content);
    *res.status_mut() = status;
    res
}

/// `GET /invite`.
pub async fn invite_form(ctx: UiContext, query: web::Query<InviteQuery>) -> HttpResponse {
    invite_page(
        &ctx,
        query.token.as_deref().unwrap_or(""),
        None,
        StatusCode::OK,
    )
}

/// `POST /invite`: the API's accept-invite use case, then logged in.
pub async fn accept_invite(
    req: HttpRequest,
    ctx: UiContext,
    state: web::Data<AppState>,
    settings: web::Data<UiSettings>,
    UiForm(form): UiForm<InviteForm>,
) -> UiResult {
    let audit = audit_context(&req, "anonymous", None);
    match state
        .control
        .accept_invite(
            audit,
            Secret::new(form.token.clone()),
            Secret::new(form.password),
        )
        .await
    {
        Ok(pair) => Ok(logged_in(&pair, &settings, "/portal")),
        Err(e) => {
            let api = ApiError::from(e);
            let status = actix_web::ResponseError::status_code(&api);
            let body = api.body();
            let mut message = body.error.message;
            if let Some(fields) = body.error.details["fields"].as_array() {
                for f in fields {
                    message = format!(
                        "{}: {}",
                        f["field"].as_str().unwrap_or(""),
                        f["message"].as_str().unwrap_or("")
                    );
                }
            }
            Ok(invite_page(&ctx, &form.token, Some(message), status))
        }
    }
}
