//! The operators' pages: the tenants (search, filters, pages; create, on a dedicated gateway if
//! asked; suspend and reactivate;
//! ask for a dedicated gateway or withdraw the wish; delete with confirmation) and the audit log
//! of every tenant. Each form calls the use case
//! the API's route calls.

use actix_web::{HttpResponse, web};
use maud::html;
use serde::Deserialize;
use tenant_configgen::SecretsMode;
use tenant_core::{NewTenant, PageRequest, Plan, TenantStatus};
use tenant_service::access::Action;
use tenant_service::gateway_config::Variant;
use tenant_service::tenants::TenantPatch;
use tenant_store::tenants::TenantFilter;

use crate::http::error::ApiError;
use crate::http::extract::Actor;
use crate::state::AppState;
use crate::ui::error::{UiError, UiResult, percent_encode, see_other};
use crate::ui::form::UiForm;
use crate::ui::layout::{self, badge, csrf_field, empty, shown_once, when};
use crate::ui::scope::{OperatorPage, TenantScope};
use crate::ui::tenant_pages::{AuditQuery, audit_section, status_badge};

/// `GET /admin`.
pub async fn admin_home(_: OperatorPage) -> HttpResponse {
    see_other("/admin/tenants")
}

/// Query of the tenants list.
#[derive(Debug, Deserialize)]
pub struct TenantsQuery {
    q: Option<String>,
    status: Option<String>,
    plan: Option<String>,
    cursor: Option<String>,
    notice: Option<String>,
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// `GET /admin/tenants`.
pub async fn tenants(
    page: OperatorPage,
    state: web::Data<AppState>,
    query: web::Query<TenantsQuery>,
) -> UiResult {
    let (q, status, plan) = (
        non_empty(&query.q),
        non_empty(&query.status),
        non_empty(&query.plan),
    );
    let filter = TenantFilter {
        status: status.map(str::parse::<TenantStatus>).transpose()?,
        plan: plan.map(str::parse::<Plan>).transpose()?,
        name_contains: q.map(str::to_owned),
    };
    let request = PageRequest::parse(Some(25), non_empty(&query.cursor))?;
    let first_page = request.after.is_none();
    let list = state.control.list_tenants(filter, request).await?;
    let filters = format!(
        "q={}&status={}&plan={}",
        percent_encode(q.unwrap_or("")),
        percent_encode(status.unwrap_or("")),
        percent_encode(plan.unwrap_or(""))
    );
    let ctx = &page.ctx;
    let content = html! {
        div class="page-head" {
            h1 { "Tenants" }
        }
        form class="filters" method="get" action="/admin/tenants" role="search" {
            label for="q" class="sr-only" { "Search by name" }
            input id="q" name="q" type="search" placeholder="Search by name" value=(q.unwrap_or(""));
            label for="status" class="sr-only" { "Filter by status" }
            select id="status" name="status" data-autosubmit {
                option value="" { "Any status" }
                @for s in TenantStatus::ALL {
                    option value=(s.as_str()) selected[status == Some(s.as_str())] { (s.as_str()) }
                }
            }
            label for="plan" class="sr-only" { "Filter by plan" }
            select id="plan" name="plan" data-autosubmit {
                option value="" { "Any plan" }
                @for p in Plan::ALL {
                    option value=(p.as_str()) selected[plan == Some(p.as_str())] { (p.as_str()) }
                }
            }
            button type="submit" { "Filter" }
        }
        @if list.items.is_empty() {
            @if q.is_some() || status.is_some() || plan.is_some() {
                (empty("No tenant matches these filters."))
            } @else {
                (empty("No tenants yet. Create the first one below."))
            }
        } @else {
            table {
                thead { tr { th { "Name" } th { "Slug" } th { "Plan" } th { "Status" } th { "Created" } } }
                tbody {
                    @for t in &list.items {
                        tr {
                            td { a href={ "/admin/tenants/" (t.id) } { (t.name.as_str()) } }
                            td { code { (t.slug.as_str()) } }
                            td { (t.plan.as_str()) }
                            td { (status_badge(t.status)) }
                            td { (when(&t.created_at)) }
                        }
                    }
                }
            }
        }
        nav class="pager" aria-label="Pages" {
            @if !first_page { a href={ "/admin/tenants?" (filters) } { "← First page" } }
            @if let Some(next) = &list.next_cursor {
                a href={ "/admin/tenants?" (filters) "&cursor=" (percent_encode(&next.encode())) } { "Next page →" }
            }
        }
        section class="card" {
            h2 { "Create a tenant" }
            form method="post" action="/admin/tenants" class="inline-form" {
                (csrf_field(ctx))
                div { label for="name" { "Name" } input id="name" name="name" required maxlength="200"; }
                div { label for="slug" { "Slug " span class="muted" { "(optional)" } } input id="slug" name="slug" pattern="[a-z0-9\\-]{1,63}" title="lowercase letters, digits and hyphens"; }
                div {
                    label for="new-plan" { "Plan" }
                    select id="new-plan" name="plan" {
                        @for p in Plan::ALL { option value=(p.as_str()) { (p.as_str()) } }
                    }
                }
                div {
                    label for="new-dedicated" {
                        input id="new-dedicated" name="dedicated" type="checkbox" value="true";
                        " Dedicated gateway " span class="muted" { "(whatever its plan)" }
                    }
                }
                button type="submit" class="primary" { "Create tenant" }
            }
        }
    };
    Ok(layout::page(
        ctx,
        "Tenants",
        query.notice.as_deref(),
        content,
    ))
}

/// The create form.
#[derive(Debug, Deserialize)]
pub struct CreateTenantForm {
    name: String,
    slug: Option<String>,
    plan: Option<String>,
    /// A checkbox: `true` when ticked, absent otherwise.
    dedicated: Option<String>,
}

/// A boolean form field: `true` or `false` (a checkbox sends `true` or nothing).
fn bool_field(field: &'static str, raw: Option<&str>) -> Result<bool, UiError> {
    match raw {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(tenant_core::ValidationError::new(
            field,
            "invalid_value",
            "must be `true` or `false`",
        )
        .into()),
    }
}

/// `POST /admin/tenants`: the page shows the owner key this once.
pub async fn create_tenant(
    page: OperatorPage,
    state: web::Data<AppState>,
    actor: Actor,
    UiForm(form): UiForm<CreateTenantForm>,
) -> UiResult {
    let mut new = NewTenant::parse(&form.name, non_empty(&form.slug), non_empty(&form.plan))?;
    new.dedicated = bool_field("dedicated", form.dedicated.as_deref())?;
    let (tenant, key) = state.control.create_tenant(actor.0, new, None).await?;
    let content = html! {
        div class="page-head" { h1 { "Tenant created" } }
        section class="card" {
            p { "Tenant " strong { (tenant.name.as_str()) } " (" code { (tenant.slug.as_str()) } ") is ready." }
            (shown_once("Owner API key", key.expose()))
            p { a class="button primary" href={ "/admin/tenants/" (tenant.id) } { "Open the tenant →" } }
        }
    };
    Ok(layout::page(&page.ctx, "Tenant created", None, content))
}

/// The status form.
#[derive(Debug, Deserialize)]
pub struct StatusForm {
    status: String,
}

/// `POST …/status`: suspend or reactivate (the operator's to decide).
pub async fn set_status(
    scope: TenantScope,
    state: web::Data<AppState>,
    actor: Actor,
    UiForm(form): UiForm<StatusForm>,
) -> UiResult {
    scope.allow(Action::UpdateTenant)?;
    let patch = TenantPatch {
        name: None,
        slug: None,
        plan: None,
        status: Some(form.status),
    };
    let tenant = state
        .control
        .update_tenant(actor.0, &scope.principal, scope.tenant.id, patch)
        .await?;
    let notice = match tenant.status {
        TenantStatus::Suspended => "tenant_suspended",
        _ => "tenant_active",
    };
    Ok(see_other(&format!("{}?notice={notice}", scope.base)))
}

/// The dedicated-gateway form.
#[derive(Debug, Deserialize)]
pub struct DedicatedForm {
    dedicated: String,
}

/// `POST …/dedicated`: whether the tenant wants a dedicated gateway (the use case
/// `PATCH /tenants/{id}/placement` calls; a tenant whose gateway no longer suits it starts
/// moving, and with no room anywhere nothing changes and the page says why).
pub async fn set_dedicated(
    scope: TenantScope,
    state: web::Data<AppState>,
    actor: Actor,
    UiForm(form): UiForm<DedicatedForm>,
) -> UiResult {
    scope.allow(Action::ManagePlacement)?;
    let dedicated = bool_field("dedicated", Some(form.dedicated.as_str()))?;
    let placement = state
        .control
        .set_dedicated(actor.0, scope.tenant.id, dedicated)
        .await?;
    let notice = match (placement.state, dedicated) {
        (tenant_core::PlacementState::Moving, _) => "dedicated_moving",
        (_, true) => "dedicated_on",
        (_, false) => "dedicated_off",
    };
    Ok(see_other(&format!("{}?notice={notice}", scope.base)))
}

/// `GET …/delete`: the confirmation page (type the slug).
pub async fn confirm_delete(scope: TenantScope) -> UiResult {
    scope.allow(Action::DeleteTenant)?;
    let t = &scope.tenant;
    let content = html! {
        section class="card danger narrow" {
            h1 { "Delete " (t.name.as_str()) "?" }
            p { "This deletes the tenant with its channels, API keys, users, sessions and webhooks. It cannot be undone." }
            form method="post" action=(scope.path("/delete")) class="stack" {
                (csrf_field(&scope.ctx))
                label for="confirm" { "Type the slug " code { (t.slug.as_str()) } " to confirm" }
                input id="confirm" name="confirm" required autocomplete="off";
                div class="actions" {
                    button type="submit" class="danger" { "Delete tenant" }
                    a href=(scope.base) { "Cancel" }
                }
            }
        }
    };
    Ok(layout::page(&scope.ctx, "Delete tenant", None, content))
}

/// The delete form.
#[derive(Debug, Deserialize)]
pub struct DeleteForm {
    confirm: String,
}

/// `POST …/delete`.
pub async fn delete_tenant(
    scope: TenantScope,
    state: web::Data<AppState>,
    actor: Actor,
    UiForm(form): UiForm<DeleteForm>,
) -> UiResult {
    scope.allow(Action::DeleteTenant)?;
    if form.confirm.trim() != scope.tenant.slug.as_str() {
        return Err(UiError::from(tenant_core::ValidationError::new(
            "confirm",
            "mismatch",
            "type the tenant's slug to confirm the deletion",
        )));
    }
    state
        .control
        .delete_tenant(actor.0, scope.tenant.id)
        .await?;
    Ok(see_other("/admin/tenants?notice=tenant_deleted"))
}

/// `GET /admin/audit`: every tenant's audit log.
pub async fn audit(
    page: OperatorPage,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> UiResult {
    let content = audit_section(&state, None, &query, "/admin/audit").await?;
    Ok(layout::page(&page.ctx, "Audit log", None, content))
}

/// Which gateway's document the gateway page shows (`?gateway=<id>`; `default` when absent).
#[derive(Debug, Deserialize)]
pub struct GatewayDocQuery {
    gateway: Option<String>,
}

impl GatewayDocQuery {
    fn gateway(&self) -> Result<tenant_core::GatewayId, UiError> {
        match non_empty(&self.gateway) {
            None => Ok(tenant_core::GatewayId::DEFAULT),
            Some(raw) => Ok(crate::http::extract::parse_uuid("gateway", raw)?.into()),
        }
    }
}

/// A gateway's document with every secret as an environment reference (`${VAR}`): what the
/// gateway page shows and offers for download.
fn redacted_variant(state: &AppState, gateway: tenant_core::GatewayId) -> Variant {
    Variant {
        gateway,
        dialect: state.control.render_options().dialect,
        secrets: SecretsMode::Env,
        per_tenant: false,
    }
}

/// The longest preview of the document shown in the page.
const PREVIEW_BYTES: usize = 64 * 1024;

/// `GET /admin/gateway[?gateway=<id>]`: the config revision, ETag and size a gateway is served
/// (`default` unless named), whether its tenants' data makes a valid config, and a preview with
/// the secrets redacted.
pub async fn gateway(
    page: OperatorPage,
    state: web::Data<AppState>,
    query: web::Query<GatewayDocQuery>,
) -> UiResult {
    let id = query.gateway()?;
    let name = state.control.gateway(id).await?.gateway.name;
    let render = state.control.render_options();
    let served = Variant {
        gateway: id,
        dialect: render.dialect,
        secrets: render.secrets,
        per_tenant: false,
    };
    let current = state
        .control
        .combined_config(served)
        .await
        .map_err(|e| ApiError::from(e).body().error.message);
    let preview = match &current {
        Ok(_) => state
            .control
            .combined_config(redacted_variant(&state, id))
            .await
            .ok()
            .map(|doc| pretty_preview(&doc.to_vec())),
        Err(_) => None,
    };
    let content = html! {
        div class="page-head" {
            h1 { "Config of gateway " (name) }
            a href={ "/admin/gateways/" (id) } { "← The gateway" }
        }
        section class="card" {
            @match &current {
                Ok(doc) => {
                    p { (badge("good", "valid")) " The tenants' data renders a config the gateway accepts." }
                    table class="facts" {
                        tbody {
                            tr { th scope="row" { "Revision" } td { code { (doc.revision) } } }
                            tr { th scope="row" { "ETag" } td { code { (doc.etag) } } }
                            tr { th scope="row" { "Size" } td { (doc.len()) " bytes in " (doc.chunk_count()) " chunks" } }
                            tr { th scope="row" { "Dialect" } td { (render.dialect.as_str()) } }
                            tr { th scope="row" { "Secrets" } td { (render.secrets.as_str()) " (as served to the gateway)" } }
                        }
                    }
                    p { a class="button primary" href={ "/admin/gateway/config.json?gateway=" (id) } download="openclaw.json" { "Download (secrets redacted)" } }
                }
                Err(message) => {
                    p { (badge("bad", "invalid")) " " (message) }
                }
            }
        }
        @if let Some(bytes) = &preview {
            section class="card" {
                h2 { "Preview " span class="muted" { "(credentials shown as environment references)" } }
                pre class="config" { (bytes) }
            }
        }
    };
    Ok(layout::page(&page.ctx, "Gateway", None, content))
}

/// The document indented for reading, cut after [`PREVIEW_BYTES`].
fn pretty_preview(json: &[u8]) -> String {
    // Indenting means parsing: only for documents of a reasonable size.
    let mut text = (json.len() <= 16 * PREVIEW_BYTES)
        .then(|| serde_json::from_slice::<serde_json::Value>(json).ok())
        .flatten()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(json).into_owned());
    if text.len() > PREVIEW_BYTES {
        let mut cut = PREVIEW_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("\n…");
    }
    text
}

/// `GET /admin/gateway/config.json`: the combined config with every secret redacted to an
/// environment reference, as a download.
pub async fn gateway_download(
    _: OperatorPage,
    state: web::Data<AppState>,
    query: web::Query<GatewayDocQuery>,
) -> UiResult {
    let doc = state
        .control
        .combined_config(redacted_variant(&state, query.gateway()?))
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((
            "Content-Disposition",
            "attachment; filename=\"openclaw.json\"",
        ))
        .insert_header(("ETag", doc.etag.clone()))
        .body(doc.to_vec()))
}
