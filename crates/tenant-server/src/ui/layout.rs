//! The page shell (header, navigation, notices, the logout form), small rendering helpers, and
//! the error pages. Markup is maud: every interpolated value is HTML-escaped.

use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, ResponseError};
use chrono::{DateTime, NaiveDateTime, Utc};
use maud::{DOCTYPE, Markup, html};
use tenant_service::ServiceError;
use tenant_service::principal::Principal;

use crate::http::error::ApiError;
use crate::ui::context::UiContext;
use crate::ui::host::Site;

/// The whole document around a page's content.
fn document(title: &str, header: Markup, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · moltbot SaaS" }
                link rel="icon" href="/ui/icon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/ui/app.css";
                script src="/ui/app.js" defer {}
            }
            body {
                (header)
                main id="main" { (content) }
            }
        }
    }
}

/// Who is logged in, in a few words.
fn who(ctx: &UiContext) -> Option<String> {
    match ctx.principal.as_ref()? {
        Principal::Operator { .. } => Some("Operator".into()),
        Principal::Tenant { role, .. } => Some(format!("Role: {}", role.as_str())),
        Principal::Gateway { .. } => None,
    }
}

/// The header: brand, the area's links, the user and the logout button.
fn header(ctx: &UiContext) -> Markup {
    let (home, area) = match (&ctx.site, ctx.principal.as_ref()) {
        (Site::Tenant(t), _) => ("/portal".to_owned(), t.name.as_str().to_owned()),
        (_, Some(Principal::Tenant { .. })) => ("/portal".to_owned(), "Portal".to_owned()),
        _ => ("/admin".to_owned(), "Admin".to_owned()),
    };
    html! {
        header class="topbar" {
            a class="brand" href=(home) { span class="logo" aria-hidden="true" { "◆" } " moltbot SaaS" }
            span class="area" { (area) }
            @if ctx.is_operator() {
                nav aria-label="Main" {
                    a href="/admin/tenants" { "Tenants" }
                    a href="/admin/audit" { "Audit log" }
                    a href="/admin/gateways" { "Gateways" }
                }
            }
            @if let Some(who) = who(ctx) {
                form class="logout" method="post" action="/logout" {
                    (csrf_field(ctx))
                    span class="who" { (who) }
                    button type="submit" class="link" { "Log out" }
                }
            }
        }
    }
}

/// A full page for a logged-in (or anonymous) visitor.
pub fn page(ctx: &UiContext, title: &str, notice: Option<&str>, content: Markup) -> HttpResponse {
    let body = html! {
        @if let Some(text) = notice.and_then(notice_text) {
            div class="notice" role="status" { (text) }
        }
        (content)
    };
    html_response(StatusCode::OK, document(title, header(ctx), body))
}

/// An HTML response with this status.
pub fn html_response(status: StatusCode, markup: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(ContentType::html())
        .body(markup.into_string())
}

/// The sentence of a notice named in a redirect (`?notice=`): only these fixed texts are shown,
/// never text from the query.
pub fn notice_text(key: &str) -> Option<&'static str> {
    Some(match key {
        "tenant_suspended" => "The tenant is suspended: its channels left the gateway config.",
        "tenant_active" => "The tenant is active again.",
        "tenant_deleted" => "The tenant and everything it owned were deleted.",
        "tenant_updated" => "The tenant was updated.",
        "channel_added" => "The channel was added.",
        "channel_updated" => "The channel was updated.",
        "channel_deleted" => "The channel was removed.",
        "key_revoked" => "The API key was revoked.",
        "user_updated" => "The user was updated.",
        "user_deleted" => "The user was removed.",
        "webhook_updated" => "The endpoint was updated.",
        "webhook_deleted" => "The endpoint was removed.",
        "test_sent" => "A test event was queued for delivery.",
        "replayed" => "The delivery was queued again.",
        "logged_out" => "You are logged out.",
        "gateway_updated" => "The gateway was updated.",
        "gateway_draining" => {
            "The gateway is draining: its tenants are moving where there is room."
        }
        "gateway_open" => "The gateway takes new tenants again.",
        "gateway_deleted" => "The gateway was deleted.",
        "all_placed" => "Every tenant waiting for room is on a gateway now.",
        "some_placed" => {
            "Some waiting tenants were placed; the others still wait for room (add a gateway or raise a capacity)."
        }
        "none_placed" => {
            "No gateway has room for the tenants waiting: add a gateway or raise a capacity."
        }
        "none_waiting" => "No tenant is waiting for room.",
        "dedicated_on" => "The tenant wants a dedicated gateway now.",
        "dedicated_off" => "The tenant no longer asks for a dedicated gateway: its plan decides.",
        "dedicated_moving" => {
            "The tenant is moving to a gateway of the kind it wants: it left its gateway's config and enters the other's once its gateway has acknowledged."
        }
        _ => return None,
    })
}

/// The hidden CSRF field of a form.
pub fn csrf_field(ctx: &UiContext) -> Markup {
    html! { input type="hidden" name="csrf" value=(ctx.csrf); }
}

/// A time for tables.
pub fn when(t: &DateTime<Utc>) -> Markup {
    html! { time datetime=(t.to_rfc3339()) { (t.format("%Y-%m-%d %H:%M UTC")) } }
}

/// A stored (UTC) time for tables.
pub fn when_naive(t: &NaiveDateTime) -> Markup {
    when(&t.and_utc())
}

/// An optional stored time, `—` when absent.
pub fn when_opt(t: Option<&NaiveDateTime>) -> Markup {
    match t {
        Some(t) => when_naive(t),
        None => html! { span class="muted" { "—" } },
    }
}

/// A coloured label: `good`, `warn`, `bad` or `neutral`.
pub fn badge(tone: &str, text: &str) -> Markup {
    html! { span class={ "badge " (tone) } { (text) } }
}

/// The empty state of a list.
pub fn empty(text: &str) -> Markup {
    html! { p class="empty" { (text) } }
}

/// A secret shown this once, with a copy button (the button needs JavaScript; the value can be
/// selected without).
pub fn shown_once(label: &str, value: &str) -> Markup {
    html! {
        div class="secret" {
            p { strong { (label) } " — copy it now: it is shown only this once." }
            div class="secret-row" {
                input type="text" readonly value=(value) aria-label=(label) id="secret-value";
                button type="button" data-copy="secret-value" { "Copy" }
            }
        }
    }
}

/// A standalone page (no navigation) explaining an error.
pub fn plain_error(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    error_document(status, title, message, None, &[])
}

fn error_document(
    status: StatusCode,
    title: &str,
    message: &str,
    code: Option<&str>,
    fields: &[(String, String)],
) -> HttpResponse {
    let header = html! {
        header class="topbar" {
            a class="brand" href="/" { span class="logo" aria-hidden="true" { "◆" } " moltbot SaaS" }
        }
    };
    let content = html! {
        section class="card error-page" role="alert" {
            h1 { (title) }
            p { (message) }
            @if !fields.is_empty() {
                ul class="field-errors" {
                    @for (field, msg) in fields {
                        li { code { (field) } ": " (msg) }
                    }
                }
            }
            @if let Some(code) = code {
                p class="muted" { "Error code " code { (code) } " (HTTP " (status.as_u16()) ")" }
            }
            p { a href="/" data-back { "← Back" } " · " a href="/" { "Home" } }
        }
    };
    html_response(status, document(title, header, content))
}

/// The page of an API error: its status, code, message and the fields at fault.
pub fn api_error_page(e: &ApiError) -> HttpResponse {
    let status = e.status_code();
    if status.is_server_error() {
        // Logged (with the cause) as the API logs it.
        let _ = e.error_response();
    }
    let body = e.body();
    let fields: Vec<(String, String)> = body.error.details["fields"]
        .as_array()
        .map(|fs| {
            fs.iter()
                .map(|f| {
                    (
                        f["field"].as_str().unwrap_or("").to_owned(),
                        f["message"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let title = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::CONFLICT => "Conflict",
        StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST => "Please check the form",
        StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
        s if s.is_server_error() => "Something went wrong",
        _ => "Request refused",
    };
    let message = if status == StatusCode::FORBIDDEN {
        "Your role does not allow this.".to_owned()
    } else {
        body.error.message.clone()
    };
    error_document(status, title, &message, Some(&body.error.code), &fields)
}

/// The page of a use case's error.
pub fn service_error_page(e: ServiceError) -> HttpResponse {
    api_error_page(&ApiError::from(e))
}
