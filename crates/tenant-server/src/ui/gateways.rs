//! The operators' gateway fleet pages (`/admin/gateways`): every gateway with its load, health
//! and the revision it serves; create one (its token shown once), change its capacity, drain
//! and reopen it, rotate its token, delete an empty one; place the tenants waiting for room. Each form calls the use case the
//! `/gateways` API calls; `docs/fleet.md` explains the fleet.

use actix_web::{HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;
use tenant_core::GatewayId;
use tenant_service::fleet::gateways::{GatewayPatch, GatewayView, Health, IssuedGateway};

use crate::http::extract::{Actor, parse_uuid};
use crate::state::AppState;
use crate::ui::error::{UiError, UiResult, see_other};
use crate::ui::form::{Empty, UiForm};
use crate::ui::layout::{self, badge, csrf_field, empty, shown_once, when};
use crate::ui::scope::OperatorPage;

/// Query of the fleet pages: a notice after a redirect.
#[derive(Debug, Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

fn gateway_id(raw: &str) -> Result<GatewayId, UiError> {
    Ok(parse_uuid("gid", raw).map(GatewayId::from)?)
}

fn health_badge(health: Health) -> Markup {
    let tone = match health {
        Health::Up => "good",
        Health::Down => "bad",
        Health::Unknown => "neutral",
    };
    badge(tone, health.as_str())
}

/// "held / capacity", or "held (no limit)".
fn load(view: &GatewayView) -> Markup {
    html! {
        @match view.gateway.capacity {
            Some(capacity) => { (view.held) " / " (capacity) }
            None => { (view.held) " " span class="muted" { "(no limit)" } }
        }
    }
}

/// The revision a gateway said it serves, and how far behind the current one it is.
fn served(view: &GatewayView, current: i64) -> Markup {
    html! {
        @match view.gateway.served_revision {
            Some(r) if r >= current => { code { (r) } " " (badge("good", "current")) }
            Some(r) => { code { (r) } " " (badge("warn", &format!("{} behind", current - r))) }
            None => span class="muted" { "—" },
        }
    }
}

/// `GET /admin/gateways`.
pub async fn list(
    page: OperatorPage,
    state: web::Data<AppState>,
    query: web::Query<NoticeQuery>,
) -> UiResult {
    let gateways = state.control.list_gateways().await?;
    let current = state.control.config_revision().await?;
    let waiting = state.control.waiting_for_room().await?;
    let ctx = &page.ctx;
    let content = html! {
        div class="page-head" { h1 { "Gateways" } }
        p class="muted" {
            "Every active tenant is on exactly one gateway; " code { "default" }
            " is the server's own " code { "SAAS_GATEWAY_TOKEN" } " and holds every tenant until others exist. "
            "Current config revision: " code { (current) } "."
        }
        @if gateways.is_empty() {
            (empty("No gateway yet."))
        } @else {
            table {
                thead { tr {
                    th { "Name" } th { "Kind" } th { "Tenants" } th { "Health" }
                    th { "Serves revision" } th { "Last heartbeat" }
                } }
                tbody {
                    @for g in &gateways {
                        tr {
                            td {
                                a href={ "/admin/gateways/" (g.gateway.id) } { (g.gateway.name) }
                                @if g.gateway.draining { " " (badge("warn", "draining")) }
                            }
                            td { (g.gateway.kind.as_str()) }
                            td { (load(g)) }
                            td { (health_badge(g.health)) }
                            td { (served(g, current)) }
                            td {
                                @match &g.gateway.last_heartbeat_at {
                                    Some(at) => (when(at)),
                                    None => span class="muted" { "never" },
                                }
                            }
                        }
                    }
                }
            }
        }
        section class="card" {
            h2 { "Tenants waiting for room" }
            @if waiting == 0 {
                p class="muted" { "None: every active tenant is on a gateway." }
            } @else {
                p {
                    strong { (waiting) } " tenant(s) are on no gateway for want of room (unplaced). "
                    "They are placed by themselves, oldest first, once there is room; place them now after adding a gateway or raising a capacity."
                }
                form method="post" action="/admin/gateways/place-pending" {
                    (csrf_field(ctx))
                    button type="submit" class="primary" { "Place waiting tenants now" }
                }
            }
        }
        section class="card" {
            h2 { "Add a gateway" }
            form method="post" action="/admin/gateways" class="inline-form" {
                (csrf_field(ctx))
                div {
                    label for="name" { "Name" }
                    input id="name" name="name" required maxlength="63" pattern="[a-z0-9\\-]{1,63}" title="lowercase letters, digits and hyphens";
                }
                div {
                    label for="kind" { "Kind" }
                    select id="kind" name="kind" {
                        option value="shared" { "shared" }
                        option value="dedicated" { "dedicated (one tenant)" }
                    }
                }
                div {
                    label for="capacity" { "Capacity " span class="muted" { "(tenants; shared only)" } }
                    input id="capacity" name="capacity" type="number" min="0" max="1000000" inputmode="numeric";
                }
                button type="submit" class="primary" { "Add gateway" }
            }
        }
    };
    Ok(layout::page(
        ctx,
        "Gateways",
        query.notice.as_deref(),
        content,
    ))
}

/// `POST /admin/gateways/place-pending`: places the tenants waiting for room where there is
/// room now (the use case `POST /gateways/place-pending` calls).
pub async fn place_pending(
    _: OperatorPage,
    state: web::Data<AppState>,
    actor: Actor,
    UiForm(_): UiForm<Empty>,
) -> UiResult {
    let report = state.control.place_pending(actor.0).await?;
    let notice = match (report.placed, report.unplaced) {
        (0, 0) => "none_waiting",
        (0, _) => "none_placed",
        (_, 0) => "all_placed",
        _ => "some_placed",
    };
    Ok(see_other(&format!("/admin/gateways?notice={notice}")))
}

/// The create form.
#[derive(Debug, Deserialize)]
pub struct CreateForm {
    name: String,
    kind: Option<String>,
    capacity: Option<String>,
}

/// A capacity field: empty is none; otherwise a whole number (the use case checks the range).
fn capacity_field(raw: Option<&str>) -> Result<Option<i64>, UiError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s.parse::<i64>().map(Some).map_err(|_| {
            tenant_core::ValidationError::new(
                "capacity",
                "invalid",
                "the capacity must be a whole number of tenants",
            )
            .into()
        }),
    }
}

/// The page that shows a gateway's token, this once, and how to use it.
fn token_page(page: &OperatorPage, title: &str, issued: &IssuedGateway) -> UiResult {
    let g = &issued.view.gateway;
    let content = html! {
        div class="page-head" { h1 { (title) } }
        section class="card" {
            p { "Gateway " strong { (g.name) } " (" (g.kind.as_str()) ")." }
            (shown_once("Gateway token", issued.token.expose()))
            p { "On the gateway's host, keep its config file with this token:" }
            pre { code { "moltbot-saas config sync --gateway " (g.name) " --out /etc/openclaw/openclaw.json" } }
            p { "or read " code { "GET /config" } " with " code { "Authorization: Bearer <token>" } "." }
            p { a class="button primary" href={ "/admin/gateways/" (g.id) } { "Open the gateway →" } }
        }
    };
    Ok(layout::page(&page.ctx, title, None, content))
}

/// `POST /admin/gateways`: the page shows the token this once.
pub async fn create(
    page: OperatorPage,
    state: web::Data<AppState>,
    actor: Actor,
    UiForm(form): UiForm<CreateForm>,
) -> UiResult {
    let capacity = capacity_field(form.capacity.as_deref())?;
    let kind = form.kind.filter(|k| !k.trim().is_empty());
    let issued = state
        .control
        .create_gateway(actor.0, form.name.trim().to_owned(), kind, capacity)
        .await?;
    token_page(&page, "Gateway added", &issued)
}

/// `GET /admin/gateways/{gid}`.
pub async fn detail(
    page: OperatorPage,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<NoticeQuery>,
) -> UiResult {
    let id = gateway_id(&path)?;
    let view = state.control.gateway(id).await?;
    let current = state.control.config_revision().await?;
    let g = &view.gateway;
    let base = format!("/admin/gateways/{}", g.id);
    let ctx = &page.ctx;
    let content = html! {
        div class="page-head" {
            h1 { "Gateway " (g.name) }
            a href="/admin/gateways" { "← All gateways" }
        }
        section class="card" {
            table class="facts" { tbody {
                tr { th scope="row" { "Id" } td { code { (g.id) } } }
                tr { th scope="row" { "Kind" } td { (g.kind.as_str()) } }
                tr { th scope="row" { "Tenants" } td { (load(&view)) } }
                tr { th scope="row" { "Taking new tenants" } td {
                    @if g.draining { (badge("warn", "no: draining")) } @else { (badge("good", "yes")) }
                } }
                tr { th scope="row" { "Health" } td { (health_badge(view.health)) } }
                tr { th scope="row" { "Last heartbeat" } td {
                    @match &g.last_heartbeat_at { Some(at) => (when(at)), None => span class="muted" { "never" } }
                } }
                tr { th scope="row" { "Serves revision" } td { (served(&view, current)) } }
                tr { th scope="row" { "Token" } td {
                    @match &g.token_prefix {
                        Some(prefix) => { code { (prefix) "…" } }
                        None => { "the server's " code { "SAAS_GATEWAY_TOKEN" } }
                    }
                } }
                tr { th scope="row" { "Created" } td { (when(&g.created_at)) } }
            } }
            p { a href={ "/admin/gateway?gateway=" (g.id) } { "Its config document →" } }
        }
        @if g.kind == tenant_core::GatewayKind::Shared {
            section class="card" {
                h2 { "Capacity" }
                form method="post" action={ (base) "/capacity" } class="inline-form" {
                    (csrf_field(ctx))
                    div {
                        label for="capacity" { "Tenants it may hold" @if g.id.is_default() { " " span class="muted" { "(empty: no limit)" } } }
                        input id="capacity" name="capacity" type="number" min="0" max="1000000" inputmode="numeric"
                            value=[g.capacity] required[!g.id.is_default()];
                    }
                    button type="submit" { "Set capacity" }
                }
            }
        }
        section class="card" {
            h2 { "Draining" }
            @if g.draining {
                p { "It takes no new tenants; the ones it held are moving where there is room." }
                form method="post" action={ (base) "/draining" } {
                    (csrf_field(ctx))
                    input type="hidden" name="draining" value="false";
                    button type="submit" { "Open it again" }
                }
            } @else {
                p { "Draining stops new placements here and moves its tenants to gateways with room (each leaves this document before it enters the other's)." }
                form method="post" action={ (base) "/draining" } {
                    (csrf_field(ctx))
                    input type="hidden" name="draining" value="true";
                    button type="submit" class="danger" { "Drain" }
                }
            }
        }
        @if !g.id.is_default() {
            section class="card" {
                h2 { "Token" }
                p { "A new token works at once; the old one stops working (on other replicas within 30 s)." }
                form method="post" action={ (base) "/rotate" } {
                    (csrf_field(ctx))
                    button type="submit" { "Rotate token" }
                }
            }
            section class="card danger" {
                h2 { "Delete" }
                @if view.held > 0 {
                    p { "It still holds " (view.held) " tenant(s): drain it first." }
                } @else {
                    form method="post" action={ (base) "/delete" } {
                        (csrf_field(ctx))
                        button type="submit" class="danger" { "Delete gateway" }
                    }
                }
            }
        }
    };
    Ok(layout::page(
        ctx,
        &format!("Gateway {}", g.name),
        query.notice.as_deref(),
        content,
    ))
}

/// The gateway's page again, with `notice` (after a form that changed it).
fn back_to(id: GatewayId, notice: &str) -> HttpResponse {
    see_other(&format!("/admin/gateways/{id}?notice={notice}"))
}

/// Applies `patch` to gateway `id` (the use case `PATCH /gateways/{id}` calls) and goes back to
/// its page with `notice`.
async fn patched(
    state: &AppState,
    actor: Actor,
    id: GatewayId,
    patch: GatewayPatch,
    notice: &str,
) -> UiResult {
    state.control.update_gateway(actor.0, id, patch).await?;
    Ok(back_to(id, notice))
}

/// The capacity form.
#[derive(Debug, Deserialize)]
pub struct CapacityForm {
    capacity: Option<String>,
}

/// `POST /admin/gateways/{gid}/capacity` (empty: no limit, only for `default`).
pub async fn set_capacity(
    _: OperatorPage,
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<String>,
    UiForm(form): UiForm<CapacityForm>,
) -> UiResult {
    let id = gateway_id(&path)?;
    let patch = GatewayPatch {
        capacity: Some(capacity_field(form.capacity.as_deref())?),
        ..GatewayPatch::default()
    };
    patched(&state, actor, id, patch, "gateway_updated").await
}

/// The draining form.
#[derive(Debug, Deserialize)]
pub struct DrainingForm {
    draining: String,
}

/// `POST /admin/gateways/{gid}/draining`: drain it (`true`) or open it again (`false`).
pub async fn set_draining(
    _: OperatorPage,
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<String>,
    UiForm(form): UiForm<DrainingForm>,
) -> UiResult {
    let id = gateway_id(&path)?;
    if form.draining == "true" {
        state.control.drain_gateway(actor.0, id).await?;
        return Ok(back_to(id, "gateway_draining"));
    }
    let patch = GatewayPatch {
        draining: Some(false),
        ..GatewayPatch::default()
    };
    patched(&state, actor, id, patch, "gateway_open").await
}

/// `POST /admin/gateways/{gid}/rotate`: the page shows the new token this once.
pub async fn rotate(
    page: OperatorPage,
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<String>,
    UiForm(_): UiForm<Empty>,
) -> UiResult {
    let id = gateway_id(&path)?;
    let issued = state.control.rotate_gateway_token(actor.0, id).await?;
    token_page(&page, "Gateway token rotated", &issued)
}

/// `POST /admin/gateways/{gid}/delete` (only an empty gateway).
pub async fn delete(
    _: OperatorPage,
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<String>,
    UiForm(_): UiForm<Empty>,
) -> UiResult {
    let id = gateway_id(&path)?;
    state.control.delete_gateway(actor.0, id).await?;
    Ok(see_other("/admin/gateways?notice=gateway_deleted"))
}
