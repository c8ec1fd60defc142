//! A tenant's pages, shared by the admin (`/admin/tenants/{id}/…`) and the portal
//! (`/portal/…`): its channels and their credential status, API keys, users and invites,
//! webhook endpoints with their deliveries and attempts, and its audit log; for operators, its
//! gateway and whether it wants a dedicated one. What a page shows
//! and which forms it offers follow the access policy ([`TenantScope::may`]); every form calls
//! the use case the API's route calls and is checked again by the policy.

use std::collections::HashMap;

use actix_web::{HttpRequest, web};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Map, Value};
use tenant_core::{
    ChannelKind, ChannelState, ChannelUpdate, GatewayId, NewChannel, PageRequest, PlacementState,
    Plan, Role, TenantStatus,
};
use tenant_service::access::Action;
use tenant_service::identity::users::NewUser;
use tenant_service::webhooks::endpoints::{NewWebhook, WebhookPatch};
use tenant_store::api_keys::ApiKeyRow;
use tenant_store::audit::{AuditFilter, AuditRow};

use crate::http::extract::{Actor, parse_kind, parse_uuid};
use crate::state::AppState;
use crate::ui::error::{UiError, UiResult, percent_encode, see_other};
use crate::ui::form::{Empty, UiForm};
use crate::ui::layout::{self, badge, csrf_field, empty, shown_once, when, when_naive, when_opt};
use crate::ui::scope::{Area, TenantScope};

/// A path segment by name (`kind`, `kid`, `uid`, `wid`, `did`).
fn seg<'a>(req: &'a HttpRequest, name: &str) -> &'a str {
    req.match_info().get(name).unwrap_or("")
}

/// Query carrying a notice after a redirect.
#[derive(Debug, Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

/// The badge of a tenant's status.
pub fn status_badge(status: TenantStatus) -> Markup {
    match status {
        TenantStatus::Active => badge("good", "active"),
        _ => badge("bad", status.as_str()),
    }
}

/// The tenant's heading and the tabs of its pages.
fn heading(scope: &TenantScope, active: &str) -> Markup {
    let t = &scope.tenant;
    let tabs: [(&str, &str, Action); 7] = [
        ("", "Overview", Action::ReadChannels),
        ("/usage", "Usage", Action::ReadUsage),
        ("/sessions", "Sessions", Action::ReadSessions),
        ("/keys", "API keys", Action::ReadApiKeys),
        ("/users", "Users", Action::ReadUsers),
        ("/webhooks", "Webhooks", Action::ReadWebhooks),
        ("/audit", "Audit log", Action::ReadTenantAudit),
    ];
    html! {
        @if scope.area == Area::Admin {
            p class="crumbs" { a href="/admin/tenants" { "Tenants" } " / " }
        }
        div class="page-head" {
            h1 { (t.name.as_str()) " " (status_badge(t.status)) }
            p class="muted" {
                "Slug " code { (t.slug.as_str()) } " · plan " strong { (t.plan.as_str()) }
                " · gateway account " code { (t.account_id.as_str()) }
            }
        }
        nav class="tabs" aria-label="Tenant" {
            @for (path, label, action) in tabs {
                @if scope.may(action) {
                    a href=(scope.path(path)) aria-current=[(path == active).then_some("page")] { (label) }
                }
            }
        }
    }
}

/// A one-button form (with a confirmation prompt when `confirm` is set).
fn button_form(
    scope: &TenantScope,
    action: &str,
    label: &str,
    class: &str,
    confirm: Option<&str>,
    hidden: &[(&str, &str)],
) -> Markup {
    html! {
        form method="post" action=(action) class="inline" data-confirm=[confirm] {
            (csrf_field(&scope.ctx))
            @for (name, value) in hidden {
                input type="hidden" name=(name) value=(value);
            }
            button type="submit" class=(class) { (label) }
        }
    }
}

/// `GET {base}`: the tenant, its channels, and (for operators) its status and deletion.
pub async fn overview(
    scope: TenantScope,
    state: web::Data<AppState>,
    query: web::Query<NoticeQuery>,
) -> UiResult {
    scope.allow(Action::ReadChannels)?;
    let channels = state.control.list_channels(scope.tenant.id).await?;
    let manage = scope.may(Action::ManageChannels);
    let used: Vec<ChannelKind> = channels.iter().map(|c| c.kind).collect();
    let free: Vec<ChannelKind> = ChannelKind::ALL
        .iter()
        .copied()
        .filter(|k| !used.contains(k))
        .collect();
    let operator = scope.ctx.is_operator();
    let placement = if scope.may(Action::ManagePlacement) {
        Some(placement_card(&scope, &state).await?)
    } else {
        None
    };
    let content = html! {
        (heading(&scope, ""))
        section class="card" {
            h2 { "Channels" }
            @if channels.is_empty() {
                (empty("No channels yet."))
            } @else {
                table class="channels" {
                    thead { tr { th { "Channel" } th { "State" } th { "Credentials" } @if manage { th { "Actions" } } } }
                    tbody {
                        @for c in &channels {
                            @let kind = c.kind.as_str();
                            tr data-channel=(kind) {
                                td {
                                    strong { (kind) }
                                    @if let Some(name) = &c.display_name { br; span class="muted" { (name.as_str()) } }
                                }
                                td {
                                    @match c.state() {
                                        ChannelState::Ready => (badge("good", "ready")),
                                        ChannelState::Disabled => (badge("neutral", "disabled")),
                                        ChannelState::AwaitingCredentials { .. } => (badge("warn", "awaiting credentials")),
                                    }
                                }
                                td {
                                    ul class="fields" {
                                        @for f in c.credentials.describe() {
                                            li {
                                                code { (f.name) }
                                                " "
                                                @if f.set { span class="set" { "set" } }
                                                @else if f.required { span class="missing" { "missing" } }
                                                @else { span class="muted" { "not set" } }
                                            }
                                        }
                                        @if c.credentials.describe().is_empty() { li class="muted" { "none needed" } }
                                    }
                                }
                                @if manage {
                                    td class="actions" {
                                        @if c.enabled {
                                            (button_form(&scope, &scope.path(&format!("/channels/{kind}/enabled")), "Disable", "", None, &[("enabled", "false")]))
                                        } @else {
                                            (button_form(&scope, &scope.path(&format!("/channels/{kind}/enabled")), "Enable", "", None, &[("enabled", "true")]))
                                        }
                                        @if !kind_fields(c.kind).is_empty() {
                                            details {
                                                summary { "Set credentials" }
                                                form method="post" action=(scope.path(&format!("/channels/{kind}/credentials"))) class="stack" {
                                                    (csrf_field(&scope.ctx))
                                                    @for (field, secret) in kind_fields(c.kind) {
                                                        @let id = format!("{kind}-{field}");
                                                        label for=(id) { (field) }
                                                        input id=(id) name={ "cred_" (field) } type=(if secret { "password" } else { "text" }) autocomplete="off" placeholder="unchanged when empty";
                                                    }
                                                    button type="submit" class="primary" { "Save credentials" }
                                                }
                                            }
                                        }
                                        (button_form(&scope, &scope.path(&format!("/channels/{kind}/delete")), "Remove", "danger", Some("Remove this channel?"), &[]))
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if manage && !free.is_empty() {
                form method="post" action=(scope.path("/channels")) class="inline-form" {
                    (csrf_field(&scope.ctx))
                    div {
                        label for="kind" { "Add a channel" }
                        select id="kind" name="kind" {
                            @for k in &free { option value=(k.as_str()) { (k.as_str()) } }
                        }
                    }
                    div {
                        label for="display_name" { "Display name " span class="muted" { "(optional)" } }
                        input id="display_name" name="display_name" maxlength="100";
                    }
                    button type="submit" class="primary" { "Add channel" }
                }
                p class="muted" { "A new channel awaits its credentials; set them with " em { "Set credentials" } "." }
            }
        }
        @if scope.may(Action::UpdateTenant) {
            section class="card" {
                h2 { "Settings" }
                form method="post" action=(scope.path("/settings")) class="inline-form" {
                    (csrf_field(&scope.ctx))
                    div { label for="t-name" { "Name" } input id="t-name" name="name" required maxlength="200" value=(scope.tenant.name.as_str()); }
                    // The plan (its limits, its bill) is the operator's to change.
                    @if operator {
                        div {
                            label for="t-plan" { "Plan" }
                            select id="t-plan" name="plan" {
                                @for p in Plan::ALL {
                                    option value=(p.as_str()) selected[*p == scope.tenant.plan] { (p.as_str()) }
                                }
                            }
                        }
                    }
                    button type="submit" { "Save" }
                }
            }
        }
        @if let Some(card) = placement {
            (card)
        }
        @if operator {
            section class="card" {
                h2 { "Tenant status" }
                div class="actions" {
                    @if scope.tenant.status == TenantStatus::Active {
                        (button_form(&scope, &scope.path("/status"), "Suspend", "", Some("Suspend this tenant? Its channels leave the gateway config."), &[("status", "suspended")]))
                    } @else {
                        (button_form(&scope, &scope.path("/status"), "Reactivate", "primary", None, &[("status", "active")]))
                    }
                    a class="button danger" href=(scope.path("/delete")) { "Delete…" }
                }
            }
        }
    };
    Ok(layout::page(
        &scope.ctx,
        scope.tenant.name.as_str(),
        query.notice.as_deref(),
        content,
    ))
}

/// A gateway's name, linking to its page.
async fn gateway_link(state: &AppState, id: GatewayId) -> Result<Markup, UiError> {
    let gateway = state.control.gateway_row(id).await?;
    Ok(html! { a href={ "/admin/gateways/" (id) } { (gateway.name) } })
}

/// The operators' card of where the tenant is (its gateway, a move under way, a pin) and
/// whether it wants a dedicated gateway, with the form that changes the wish.
async fn placement_card(scope: &TenantScope, state: &AppState) -> Result<Markup, UiError> {
    let p = state.control.placement(scope.tenant.id).await?;
    let on = match p.gateway_id {
        Some(id) => Some(gateway_link(state, id).await?),
        None => None,
    };
    let to = match p.target_gateway_id {
        Some(id) => Some(gateway_link(state, id).await?),
        None => None,
    };
    let state_badge = match p.state {
        PlacementState::Placed => badge("good", "placed"),
        PlacementState::Moving => badge("warn", "moving"),
        PlacementState::Unplaced => badge("bad", "unplaced: waiting for room"),
    };
    Ok(html! {
        section class="card" id="placement" {
            h2 { "Gateway" }
            table class="facts" { tbody {
                tr { th scope="row" { "Placement" } td { (state_badge) } }
                @if let Some(on) = on {
                    tr { th scope="row" { @if to.is_some() { "Leaving" } @else { "On" } } td { (on) } }
                }
                @if let Some(to) = to {
                    tr { th scope="row" { "Moving to" } td { (to) " " span class="muted" { "(enters its config once the gateway it leaves has acknowledged)" } } }
                }
                tr { th scope="row" { "Pinned" } td {
                    @if p.pinned { "yes: put there by an operator" } @else { span class="muted" { "no" } }
                } }
                tr { th scope="row" { "Dedicated gateway" } td data-dedicated=(p.dedicated) {
                    @if p.dedicated { (badge("good", "asked for")) } @else { span class="muted" { "not asked for: its plan decides" } }
                } }
            } }
            p class="muted" {
                "A tenant on a gateway of the other kind moves to one with room (it leaves its gateway's config first, and is no longer pinned); "
                "with no room, nothing changes."
            }
            @if p.dedicated {
                (button_form(scope, &scope.path("/dedicated"), "Withdraw the dedicated wish", "", None, &[("dedicated", "false")]))
            } @else {
                (button_form(scope, &scope.path("/dedicated"), "Ask for a dedicated gateway", "primary", None, &[("dedicated", "true")]))
            }
        }
    })
}

/// A kind's credential fields and whether each is secret (ids and modes are not).
fn kind_fields(kind: ChannelKind) -> Vec<(&'static str, bool)> {
    kind.credential_fields()
        .into_iter()
        .map(|f| (f, !matches!(f, "applicationId" | "mode")))
        .collect()
}

/// The add-channel form.
#[derive(Debug, Deserialize)]
pub struct AddChannelForm {
    kind: String,
    display_name: Option<String>,
}

/// `POST {base}/channels`.
pub async fn add_channel(
    scope: TenantScope,
    state: web::Data<AppState>,
    actor: Actor,
    UiForm(form): UiForm<AddChannelForm>,
) -> UiResult {
    scope.allow(Action::ManageChannels)?;
    let display = form
        .display_name
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let new = NewChannel::parse(&form.kind, None, display, None)?;
    state
        .control
        .add_channel(actor.0, scope.tenant.id, new, None)
        .await?;
    Ok(see_other(&scope.path("?notice=channel_added")))
}

/// `POST {base}/channels/{kind}/credentials`: the fields typed in (`cred_<field>`); empty
/// ones stay as they are.
pub async fn set_credentials(
    req: HttpRequest,
    scope: TenantScope,
    state: web::Data<AppState>,
    actor: Actor,
    UiForm(form): UiForm<HashMap<String, String>>,
) -> UiResult {
    scope.allow(Action::ManageChannels)?;
    let kind = parse_kind(seg(&req, "kind"))?;
    let mut creds = Map::new();
    for (field, _) in kind_fields(kind) {
        if let Some(v) = form
            .get(&format!("cred_{field}"))
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
        {
            creds.insert(field.to_owned(), Value::String(v.to_owned()));
        }
    }
    let update = ChannelUpdate::parse(kind, None, None, Some(&Value::Object(creds)))?;
    state
        .control
        .update_channel(actor.0, scope.tenant.id, kind, update)
        .await?;
    Ok(see_other(&scope.path("?notice=channel_updated")))
}

/// The enable/disable forms.
#[derive(Debug, Deserialize)]
pub struct EnabledForm {
    enabled: bool,
}

/// `POST {base}/channels/{kind}/enabled`.
pub async fn set_channel_enabled(
    req: HttpRequest,
    scope: TenantScope,
    state: web::Data<AppState>,
    actor: Actor,
    UiForm(form): UiForm<EnabledForm>,
) -> UiResult {
    scope.allow(Action::ManageChannels)?;
    let kind = parse_kind(seg(&req, "kind"))?;
    let update = ChannelUpdate::parse(kind, Some(form.enabled), None, None)?;
    state
        .control
        .update_channel(actor.0, scope.tenant.id, kind, update)
        .await?;
    Ok(see_other(&scope.path("?notice=channel_updated")))
}

/// `POST {base}/channels/{kind}/delete`.
pub async fn delete_channel(
    req: HttpRequest,
    scope: TenantScope,
    state: web::Data<AppState>,
    actor: Actor,
    UiForm(_): UiForm<Empty>,
) -> UiResult {
    scope.allow(Action::ManageChannels)?;
    let kind = parse_kind(seg(&req, "kind"))?;
    state
        .control
        .delete_channel(actor.0, scope.tenant.id, kind)
        .await?;
    Ok(see_other(&scope.path("?notice=channel_deleted")))
}

fn key_state(k: &ApiKeyRow) -> Markup {
    let now = tenant_core::now().naive_utc();
    if k.revoked_at.is_some() {
        badge("bad", "revoked")
    } else if k.expires_at.is_some_and(|e| e <= now) {
        badge("neutral", "expired")
    } else if k.replaced_by.is_some() {
        badge("warn", "rotated, expiring")
    } else {
        badge("good", "active")
    }
}

fn role_select(id: &str, default: Role) -> Markup {
    html! {
        select id=(id) name="role" {
            @for r in Role::ALL {
                option value=(r.as_str()) selected[*r == default] { (r.as_str()) }
            }
        }
    }
}

/// `GET {base}/keys`.
pub async fn keys(
    scope: TenantScope,
    state: web::Data<AppState>,
    query: web::Query<NoticeQuery>,
) -> UiResult {
    scope.allow(Action::ReadApiKeys)?;
    let keys = state
        .control
        .list_api_keys(scope.tenant.id, PageRequest::parse(Some(500), None)?)
        .await?;
    let manage = scope.may(Action::ManageApiKeys);
    let content = html! {
        (heading(&scope, "/keys"))
        section class="card" {
            h2 { "API keys" }
            @if keys.items.is_empty() {
                (empty("No API keys."))
            } @else {
                table {
                    thead { tr { th { "Name" } th { "Key" } th { "Role" } th { "State" } th { "Created" } th { "Last used" } th { "Expires" } @if manage { th { "Actions" } } } }
                    tbody {
                        @for k in &keys.items {
                            tr {
                                td { (k.name) }
                                td { code { (k.prefix) "…" } }
                                td { (k.role) }
                                td { (key_state(k)) }
                                td { (when_naive(&k.created_at)) }
                                td { (when_opt(k.last_used_at.as_ref())) }
                                td { (when_opt(k.expires_at.as_ref())) }
                                @if manage {
                                    td class="actions" {
                                        @if k.revoked_at.is_none() {
                                            (button_form(&scope, &scope.path(&format!("/keys/{}/rotate", k.id)), "Rotate", "", Some("Issue a successor? This key keeps working for 24 hours."), &[]))
                                            (button_form(&scope, &scope.path(&format!("/keys/{}/revoke", k.id)), "Revoke", "danger", Some("Revoke this key now?"), &[]))
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if manage {
                form method="post" action=(scope.path("/keys")) class="inline-form" {
                    (csrf_field(&scope.ctx))
                    div { label for="key-name" { "Name" } input id="key-name" name="name" required maxlength="100"; }
                    div { label for="key-role" { "Role" } (role_select("key-role", Role::Member)) }
                    button type="submit" class="primary" { "Issue key" }
                }
            }
        }
    };
    Ok(layout::page(
        &scope.ctx,
        "API keys",
        query.notice.as_deref(),
        content,
    ))
}

/// The issue form.
#[derive(Debug, Deserialize)]
pub struct IssueKeyForm {
    name: String,
    role: Option<String>,
}

fn key_shown(scope: &TenantScope, title: &str, row: &ApiKeyRow, key: &str) -> Markup {
    html! {
        (heading(scope, "/keys"))
        section class="card" {
            h2 { (title) }
            p { "Key " strong { (row.name) } " (role " (row.role) ")." }
            (shown_once("API key", key))
            p { a class="button" href=(scope.path("/keys")) { "Back to the keys" } }
        }
    }
}

/// `POST {base}/keys`: the new key, shown this once.
pub async fn issue_key(
    scope: TenantScope,
    state: web::Data<AppState>,
    actor: Actor,
    UiForm(form): UiForm<IssueKeyForm>,
) -> UiResult {
    scope.allow(Action::ManageApiKeys)?;
    let issued = state
        .control
        .issue_api_key(
            actor.0,
            scope.tenant.id,
            &form.name,
            form.role.as_deref(),
            None,
            None,
        )
        .await?;
    let content = key_shown(&scope, "Key issued", &issued.row, issued.key.expose());
    Ok(layout::page(&scope.ctx, "Key issued", None, content))
}

/// `POST {base}/keys/{kid}/revoke`.
pub async fn revoke_key(
    req: HttpRequest,
    scope: TenantScope,
    state: web::Data<AppState>,
    actor: Actor,
    UiForm(_): UiForm<Empty>,
) -> UiResult {
    scope.allow(Action::ManageApiKeys)?;
    let id = parse_uuid("kid", seg(&req, "kid"))?;
    state
        .control
        .revoke_api_key(actor.0, scope.tenant.id, id)
        .await?;
    Ok(see_other(&scope.path("/keys?notice=key_revoked")))
}

/// `POST {base}/keys/{kid}/rotate`: the successor, shown this once.
pub async fn rotate_key(
    req: HttpRequest,
    scope: TenantScope,
    state: web::Data<AppState>,
    actor: Actor,
    UiForm(_): UiForm<Empty>,
) -> UiResult {
    scope.allow(Action::ManageApiKeys)?;
    let id = parse_uuid("kid", seg(&req, "kid"))?;
    let issued = state
        .control
        .rotate_api_key(actor.0, scope.tenant.id, id, None, None, None)
        .await?;
    let content = key_shown(&scope, "Key rotated", &issued.row, issued.key.expose());
    Ok(layout::page(&scope.ctx, "Key rotated", None, content))
}

/// `GET {base}/users`.
pub async fn users(
    scope: TenantScope,
    state: web::Data<AppState>,
    query: web::Query<NoticeQuery>,
) -> UiResult {
    scope.allow(Action::ReadUsers)?;
    let users = state
        .control
        .list_users(scope.tenant.id, PageRequest::parse(Some(500), None)?)
        .await?;
    let manage = scope.may(Action::ManageUsers);
    let content = html! {
        (heading(&scope, "/users"))
        section class="card" {
            h2 { "Users" }
            @if users.items.is_empty() {
                (empty("No users yet. Invite the first one below."))
            } @else {
                table {
                    thead { tr { th { "Email" } th { "Role" } th { "State" } th { "Last login" } @if manage { th { "Actions" } } } }
                    tbody {
                        @for u in &users.items {
                            tr {
                                td { (u.email) }
                                td { (u.role) }
                                td {
                                    @if u.disabled { (badge("bad", "disabled")) }
                                    @else if u.password_hash.is_none() { (badge("warn", "invited")) }
                                    @else { (badge("good", "active")) }
                                }
                                td { (when_opt(u.last_login_at.as_ref())) }
                                @if manage {
                                    td class="actions" {
                                        @if u.disabled {
                                            (button_form(&scope, &scope.path(&format!("/users/{}/disabled", u.id)), "Enable", "", None, &[("disabled", "false")]))
                                        } @else {
                                            (button_form(&scope, &scope.path(&format!("/users/{}/disabled", u.id)), "Disable", "", Some("Disable this user? Their sessions end."), &[("disabled", "true")]))
                                        }
                                        (button_form(&scope, &scope.path(&format!("/users/{}/delete", u.id)), "Remove", "danger", Some("Remove this user?"), &[]))
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if manage {
                form method="post" action=(scope.path("/users")) class="inline-form" {
                    (csrf_field(&scope.ctx))
                    div { label for="invite-email" { "Email" } input id="invite-email" name="email" type="email" required; }
                    div { label for="invite-role" { "Role" } (role_select("invite-role", Role::Member)) }
                    button type="submit" class="primary" { "Invite user" }
                }
            }
        }
    };
    Ok(layout::page(
        &scope.ctx,
        "Users",
        query.notice.as_deref(),
        content,
    ))
}

/// The invite form.
#[derive(Debug, Deserialize)]
pub struct InviteForm {
    email: String,
    role: String,
}

/// `POST {base}/users`: an invited user; the invite token is shown this once.
pub async fn invite_user(
    scope: TenantScope,
    state: web::Data<AppState>,
    actor: Actor,
    UiForm(form): UiForm<InviteForm>,
) -> UiResult {
    scope.allow(Action::ManageUsers)?;
    let new = NewUser {
        email: form.email,
        role: form.role,
        password: None,
    };
    let (user, invite) = state
        .control
        .create_user(actor.0, scope.tenant.id, new, None)
        .await?;
    let content = html! {
        (heading(&scope, "/users"))
        section class="card" {
            h2 { "User invited" }
            p { strong { (user.email) } " (" (user.role) ") sets a password at " code { "/invite" } " on the tenant's portal with this token." }
            @if let Some(token) = &invite { (shown_once("Invite token", token.expose())) }
            p { a class="button" href=(scope.path("/users")) { "Back to the users" } }
        }
    };
    Ok(layout::page(&scope.ctx, "User invited", None, content))
}

/// The disable form.
#[derive(Debug, Deserialize)]
pub struct DisabledForm {
    disabled: bool,
}

/// `POST {base}/users/{uid}/disabled`.
pub async fn set_user_disabled(
    req: HttpRequest,
    scope: TenantScope,
    state: web::Data<AppState>,
    actor: Actor,
    UiForm(form): UiForm<DisabledForm>,
) -> UiResult {
    scope.allow(Action::ManageUsers)?;
    let id = parse_uuid("uid", seg(&req, "uid"))?;
    state
        .control
        .update_user(actor.0, scope.tenant.id, id, None, Some(form.disabled))
        .await?;
    Ok(see_other(&scope.path("/users?notice=user_updated")))
}

/// `POST {base}/users/{uid}/delete`.
pub async fn delete_user(
    req: HttpRequest,
    scope: TenantScope,
    state: web::Data<AppState>,
    actor: Actor,
    UiForm(_): UiForm<Empty>,
) -> UiResult {
    scope.allow(Action::ManageUsers)?;
    let id = parse_uuid("uid", seg(&req, "uid"))?;
    state
        .control
        .delete_user(actor.0, scope.tenant.id, id)
        .await?;
    Ok(see_other(&scope.path("/users?notice=user_deleted")))
}

/// An endpoint's circuit and queue: the circuit as a badge, then what is in flight and waiting.
fn delivery_state(q: &tenant_store::endpoint_circuits::EndpointQueue) -> Markup {
    let tone = match q.circuit.as_str() {
        "closed" => "good",
        "half-open" => "warn",
        _ => "bad",
    };
    html! {
        (badge(tone, &format!("circuit {}", q.circuit)))
        @if let Some(at) = &q.retry_at { " probed again " (when(at)) }
        br;
        span class="muted" {
            (q.in_flight) " in flight, " (q.pending) " pending"
            @if let Some(due) = &q.oldest_due_at { ", oldest due " (when(due)) }
        }
    }
}

/// `GET {base}/webhooks`.
pub async fn webhooks(
    scope: TenantScope,
    state: web::Data<AppState>,
    query: web::Query<NoticeQuery>,
) -> UiResult {
    scope.allow(Action::ReadWebhooks)?;
    let endpoints = state.control.list_webhooks(scope.tenant.id).await?;
    let manage = scope.may(Action::ManageWebhooks);
    let content = html! {
        (heading(&scope, "/webhooks"))
        section class="card" {
            h2 { "Webhook endpoints" }
            @if endpoints.is_empty() {
                (empty("No webhook endpoints."))
            } @else {
                table {
                    thead { tr { th { "URL" } th { "Events" } th { "State" } th { "Delivery" } th { "Created" } } }
                    tbody {
                        @for e in &endpoints {
                            tr {
                                td {
                                    a href=(scope.path(&format!("/webhooks/{}", e.id))) { (e.url) }
                                    @if let Some(d) = &e.description { br; span class="muted" { (d) } }
                                }
                                td { @if e.event_types.is_empty() { "all" } @else { (e.event_types.join(", ")) } }
                                td {
                                    @if e.enabled { (badge("good", "enabled")) } @else { (badge("neutral", "disabled")) }
                                    @if let Some(r) = &e.disabled_reason { br; span class="muted" { (r) } }
                                }
                                td { @if let Some(q) = &e.queue { (delivery_state(q)) } }
                                td { (when(&e.created_at)) }
                            }
                        }
                    }
                }
            }
            @if manage {
                form method="post" action=(scope.path("/webhooks")) class="inline-form" {
                    (csrf_field(&scope.ctx))
                    div { label for="wh-url" { "URL" } input id="wh-url" name="url" type="url" required placeholder="https://example.com/hooks"; }
                    div { label for="wh-desc" { "Description " span class="muted" { "(optional)" } } input id="wh-desc" name="description" maxlength="200"; }
                    button type="submit" class="primary" { "Add endpoint" }
                }
            }
        }
    };
    Ok(layout::page(
        &scope.ctx,
        "Webhooks",
        query.notice.as_deref(),
        content,
    ))
}

/// The endpoint form.
#[derive(Debug, Deserialize)]
pub struct WebhookForm {
    url: String,
    description: Option<String>,
}

/// `POST {base}/webhooks`: the signing secret, shown this once.
pub async fn create_webhook(
    scope: TenantScope,
    state: web::Data<AppState>,
    actor: Actor,
    UiForm(form): UiForm<WebhookForm>,
) -> UiResult {
    scope.allow(Action::ManageWebhooks)?;
    let new = NewWebhook {
        url: form.url,
        description: form.description.filter(|d| !d.trim().is_empty()),
        event_types: None,
        enabled: None,
    };
    let (endpoint, secret) = state
        .control
        .create_webhook(actor.0, scope.tenant.id, new, None)
        .await?;
    let content = html! {
        (heading(&scope, "/webhooks"))
        section class="card" {
            h2 { "Endpoint added" }
            p { "Deliveries to " code { (endpoint.url) } " are signed with this secret." }
            (shown_once("Signing secret", secret.expose()))
            p { a class="button" href=(scope.path(&format!("/webhooks/{}", endpoint.id))) { "Open the endpoint" } }
        }
    };
    Ok(layout::page(&scope.ctx, "Endpoint added", None, content))
}

/// Query of an endpoint's page.
#[derive(Debug, Deserialize)]
pub struct DeliveriesQuery {
    status: Option<String>,
    cursor: Option<String>,
    notice: Option<String>,
}

fn delivery_badge(status: &str) -> Markup {
    match status {
        "succeeded" => badge("good", "succeeded"),
        "failed" => badge("bad", "failed"),
        other => badge("warn", other),
    }
}

/// `GET {base}/webhooks/{wid}`: the endpoint and its deliveries.
pub async fn webhook(
    req: HttpRequest,
    scope: TenantScope,
    state: web::Data<AppState>,
    query: web::Query<DeliveriesQuery>,
) -> UiResult {
    scope.allow(Action::ReadWebhooks)?;
    let wid = parse_uuid("wid", seg(&req, "wid"))?;
    let endpoint = state.control.webhook(scope.tenant.id, wid).await?;
    let status = query.status.as_deref().filter(|s| !s.is_empty());
    let request = PageRequest::parse(Some(50), query.cursor.as_deref().filter(|s| !s.is_empty()))?;
    let first = request.after.is_none();
    let deliveries = state
        .control
        .list_deliveries(scope.tenant.id, wid, status, request)
        .await?;
    let manage = scope.may(Action::ManageWebhooks);
    let here = scope.path(&format!("/webhooks/{wid}"));
    let content = html! {
        (heading(&scope, "/webhooks"))
        section class="card" {
            h2 { "Endpoint " code { (endpoint.url) } }
            p {
                @if endpoint.enabled { (badge("good", "enabled")) } @else { (badge("neutral", "disabled")) }
                @if let Some(since) = &endpoint.failing_since { " failing since " (when(since)) }
            }
            @if let Some(q) = &endpoint.queue { p { (delivery_state(q)) } }
            @if manage {
                div class="actions" {
                    (button_form(&scope, &format!("{here}/test"), "Send a test event", "primary", None, &[]))
                    @if endpoint.enabled {
                        (button_form(&scope, &format!("{here}/enabled"), "Disable", "", None, &[("enabled", "false")]))
                    } @else {
                        (button_form(&scope, &format!("{here}/enabled"), "Enable", "", None, &[("enabled", "true")]))
                    }
                    (button_form(&scope, &format!("{here}/delete"), "Remove", "danger", Some("Remove this endpoint and its delivery history?"), &[]))
                }
            }
        }
        section class="card" {
            h2 { "Deliveries" }
            form class="filters" method="get" action=(here) {
                label for="dstatus" class="sr-only" { "Filter by status" }
                select id="dstatus" name="status" data-autosubmit {
                    option value="" { "Any status" }
                    @for s in ["pending", "succeeded", "failed"] {
                        option value=(s) selected[status == Some(s)] { (s) }
                    }
                }
                button type="submit" { "Filter" }
            }
            @if deliveries.items.is_empty() {
                (empty("No deliveries yet."))
            } @else {
                table {
                    thead { tr { th { "Delivery" } th { "Status" } th { "Attempts" } th { "Last answer" } th { "Created" } @if manage { th { "Actions" } } } }
                    tbody {
                        @for d in &deliveries.items {
                            tr {
                                td { a href={ (here) "/deliveries/" (d.id) } { code { (d.id.get(..8).unwrap_or(&d.id)) } } }
                                td { (delivery_badge(&d.status)) }
                                td { (d.attempts) }
                                td {
                                    @if let Some(code) = d.last_status_code { "HTTP " (code) }
                                    @if let Some(err) = &d.last_error { " " span class="muted" { (err) } }
                                }
                                td { (when_naive(&d.created_at)) }
                                @if manage {
                                    td { @if d.status != "pending" {
                                        (button_form(&scope, &format!("{here}/deliveries/{}/replay", d.id), "Replay", "", None, &[]))
                                    } }
                                }
                            }
                        }
                    }
                }
            }
            nav class="pager" aria-label="Pages" {
                @if !first { a href={ (here) "?status=" (status.unwrap_or("")) } { "← First page" } }
                @if let Some(next) = &deliveries.next_cursor {
                    a href={ (here) "?status=" (status.unwrap_or("")) "&cursor=" (percent_encode(&next.encode())) } { "Next page →" }
                }
            }
        }
    };
    Ok(layout::page(
        &scope.ctx,
        "Webhook endpoint",
        query.notice.as_deref(),
        content,
    ))
}

/// `POST {base}/webhooks/{wid}/test`.
pub async fn test_webhook(
    req: HttpRequest,
    scope: TenantScope,
    state: web::Data<AppState>,
    UiForm(_): UiForm<Empty>,
) -> UiResult {
    scope.allow(Action::ManageWebhooks)?;
    let wid = parse_uuid("wid", seg(&req, "wid"))?;
    state.control.test_webhook(scope.tenant.id, wid).await?;
    Ok(see_other(
        &scope.path(&format!("/webhooks/{wid}?notice=test_sent")),
    ))
}

/// `POST {base}/webhooks/{wid}/enabled`.
pub async fn set_webhook_enabled(
    req: HttpRequest,
    scope: TenantScope,
    state: web::Data<AppState>,
    actor: Actor,
    UiForm(form): UiForm<EnabledForm>,
) -> UiResult {
    scope.allow(Action::ManageWebhooks)?;
    let wid = parse_uuid("wid", seg(&req, "wid"))?;
    let patch = WebhookPatch {
        url: None,
        description: None,
        event_types: None,
        enabled: Some(form.enabled),
    };
    state
        .control
        .update_webhook(actor.0, scope.tenant.id, wid, patch)
        .await?;
    Ok(see_other(
        &scope.path(&format!("/webhooks/{wid}?notice=webhook_updated")),
    ))
}

/// `POST {base}/webhooks/{wid}/delete`.
pub async fn delete_webhook(
    req: HttpRequest,
    scope: TenantScope,
    state: web::Data<AppState>,
    actor: Actor,
    UiForm(_): UiForm<Empty>,
) -> UiResult {
    scope.allow(Action::ManageWebhooks)?;
    let wid = parse_uuid("wid", seg(&req, "wid"))?;
    state
        .control
        .delete_webhook(actor.0, scope.tenant.id, wid)
        .await?;
    Ok(see_other(&scope.path("/webhooks?notice=webhook_deleted")))
}

/// `GET {base}/webhooks/{wid}/deliveries/{did}`: a delivery and its attempts.
pub async fn delivery(
    req: HttpRequest,
    scope: TenantScope,
    state: web::Data<AppState>,
    query: web::Query<NoticeQuery>,
) -> UiResult {
    scope.allow(Action::ReadWebhooks)?;
    let wid = parse_uuid("wid", seg(&req, "wid"))?;
    let did = parse_uuid("did", seg(&req, "did"))?;
    let (d, attempts) = state.control.delivery(scope.tenant.id, wid, did).await?;
    let here = scope.path(&format!("/webhooks/{wid}"));
    let content = html! {
        (heading(&scope, "/webhooks"))
        p class="crumbs" { a href=(here) { "← Endpoint" } }
        section class="card" {
            h2 { "Delivery " code { (d.id) } " " (delivery_badge(&d.status)) }
            p class="muted" { "Event " code { (d.event_id) } " · created " (when_naive(&d.created_at)) " · next attempt " (when_naive(&d.next_attempt_at)) }
            @if scope.may(Action::ManageWebhooks) && d.status != "pending" {
                (button_form(&scope, &format!("{here}/deliveries/{did}/replay"), "Replay", "primary", None, &[]))
            }
            h3 { "Attempts" }
            @if attempts.is_empty() {
                (empty("No attempts yet."))
            } @else {
                table {
                    thead { tr { th { "#" } th { "Outcome" } th { "HTTP" } th { "Latency" } th { "Error / answer" } th { "At" } } }
                    tbody {
                        @for a in &attempts {
                            tr {
                                td { (a.attempt) }
                                td { (a.outcome) }
                                td { @if let Some(c) = a.status_code { (c) } }
                                td { (a.latency_ms) " ms" }
                                td {
                                    @if let Some(e) = &a.error { (e) }
                                    @if let Some(x) = &a.response_excerpt { br; code class="excerpt" { (x) } }
                                }
                                td { (when_naive(&a.created_at)) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(
        &scope.ctx,
        "Delivery",
        query.notice.as_deref(),
        content,
    ))
}

/// `POST {base}/webhooks/{wid}/deliveries/{did}/replay`.
pub async fn replay_delivery(
    req: HttpRequest,
    scope: TenantScope,
    state: web::Data<AppState>,
    actor: Actor,
    UiForm(_): UiForm<Empty>,
) -> UiResult {
    scope.allow(Action::ManageWebhooks)?;
    let wid = parse_uuid("wid", seg(&req, "wid"))?;
    let did = parse_uuid("did", seg(&req, "did"))?;
    state
        .control
        .replay_delivery(actor.0, scope.tenant.id, wid, did, None)
        .await?;
    Ok(see_other(&scope.path(&format!(
        "/webhooks/{wid}/deliveries/{did}?notice=replayed"
    ))))
}

/// The settings form.
#[derive(Debug, Deserialize)]
pub struct SettingsForm {
    name: String,
    plan: Option<String>,
}

/// `POST {base}/settings`: the tenant's name, and for operators its plan (the API's
/// `PATCH /tenants/{id}`; a tenant credential that sends a plan is refused there).
pub async fn update_settings(
    scope: TenantScope,
    state: web::Data<AppState>,
    actor: Actor,
    UiForm(form): UiForm<SettingsForm>,
) -> UiResult {
    scope.allow(Action::UpdateTenant)?;
    let patch = tenant_service::tenants::TenantPatch {
        name: Some(form.name),
        slug: None,
        plan: form.plan,
        status: None,
    };
    state
        .control
        .update_tenant(actor.0, &scope.principal, scope.tenant.id, patch)
        .await?;
    Ok(see_other(&scope.path("?notice=tenant_updated")))
}

/// Query of a paged list.
#[derive(Debug, Deserialize)]
pub struct CursorQuery {
    cursor: Option<String>,
}

/// `GET {base}/sessions`: the tenant's gateway sessions (conversations), oldest first.
pub async fn sessions(
    scope: TenantScope,
    state: web::Data<AppState>,
    query: web::Query<CursorQuery>,
) -> UiResult {
    scope.allow(Action::ReadSessions)?;
    let request = PageRequest::parse(Some(50), non_empty(&query.cursor))?;
    let first = request.after.is_none();
    let page = state
        .control
        .list_sessions(scope.tenant.id, request)
        .await?;
    let here = scope.path("/sessions");
    let content = html! {
        (heading(&scope, "/sessions"))
        section class="card" {
            h2 { "Gateway sessions" }
            @if page.items.is_empty() {
                (empty("No sessions yet: they appear when the gateway reports conversations."))
            } @else {
                table {
                    thead { tr { th { "Session" } th { "Channel" } th { "Chat" } th { "Peer" } th { "Started" } th { "Last activity" } } }
                    tbody {
                        @for s in &page.items {
                            tr {
                                td { code { (s.session_key) } }
                                td { (s.channel) }
                                td { (s.chat_type) }
                                td { @if let Some(p) = &s.peer_id { (p) } }
                                td { (when_naive(&s.created_at)) }
                                td { (when_naive(&s.last_activity_at)) }
                            }
                        }
                    }
                }
            }
            nav class="pager" aria-label="Pages" {
                @if !first { a href=(here) { "← First page" } }
                @if let Some(next) = &page.next_cursor {
                    a href={ (here) "?cursor=" (percent_encode(&next.encode())) } { "Next page →" }
                }
            }
        }
    };
    Ok(layout::page(&scope.ctx, "Sessions", None, content))
}

/// `GET {base}/usage`: the plan's limits, this month's usage against them, and the history
/// (the API's `GET /tenants/{id}/usage`).
pub async fn usage(scope: TenantScope, state: web::Data<AppState>) -> UiResult {
    scope.allow(Action::ReadUsage)?;
    let report = state.control.tenant_usage(scope.tenant.id).await?;
    let limits = &report.limits.limits;
    let rows: [(&str, i64, i64); 3] = [
        (
            "Messages this month",
            report.messages,
            limits.messages_per_month,
        ),
        ("Channels", report.channels, limits.max_channels),
        (
            "Webhook endpoints",
            report.webhook_endpoints,
            limits.max_webhook_endpoints,
        ),
    ];
    let content = html! {
        (heading(&scope, "/usage"))
        section class="card" {
            h2 {
                "Plan " (report.limits.plan.as_str()) " · " (report.period) " (UTC) "
                @if report.quota_exceeded {
                    (badge("bad", "quota exceeded"))
                }
            }
            @if report.quota_exceeded {
                p { "This month's messages are used up: the tenant's channels are out of the gateway's configuration until the month ends or the plan changes." }
            }
            table {
                thead { tr { th { "" } th { "Used" } th { "Limit" } } }
                tbody {
                    @for (label, used, limit) in rows {
                        tr { td { (label) } td { (used) } td { (limit) } }
                    }
                    tr { td { "API requests this month" } td { (report.api_requests) } td { "—" } }
                    tr {
                        td { "API requests per minute (per key · per tenant · burst)" }
                        td { "—" }
                        td { (limits.requests_per_minute_per_key) " · " (limits.requests_per_minute_per_tenant) " · " (limits.request_burst) }
                    }
                }
            }
            p class="muted" { "A usage.threshold event is sent at " (report.soft_limit) " messages." }
        }
        section class="card" {
            h2 { "History" }
            @if report.history.is_empty() {
                (empty("No usage recorded yet."))
            } @else {
                table {
                    thead { tr { th { "Month" } th { "Messages" } th { "API requests" } } }
                    tbody {
                        @for row in &report.history {
                            tr { td { (row.period) } td { (row.messages) } td { (row.api_requests) } }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(&scope.ctx, "Usage", None, content))
}

/// `GET {base}/audit`.
pub async fn audit(
    scope: TenantScope,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> UiResult {
    scope.allow(Action::ReadTenantAudit)?;
    let path = scope.path("/audit");
    let section = audit_section(&state, Some(scope.tenant.id), &query, &path).await?;
    let content = html! { (heading(&scope, "/audit")) (section) };
    Ok(layout::page(&scope.ctx, "Audit log", None, content))
}

/// The rows of an audit log.
pub fn audit_table(rows: &[AuditRow], with_tenant: bool) -> Markup {
    html! {
        @if rows.is_empty() {
            (empty("Nothing recorded."))
        } @else {
            table class="audit" {
                thead { tr { th { "When" } th { "Action" } th { "Actor" } th { "Resource" } @if with_tenant { th { "Tenant" } } th { "Request" } } }
                tbody {
                    @for r in rows {
                        tr {
                            td { (when_naive(&r.created_at)) }
                            td { code { (r.action) } }
                            td { (r.actor_type) @if let Some(id) = &r.actor_id { " " span class="muted" { (id.get(..8).unwrap_or(id)) } } }
                            td { (r.resource_type) @if let Some(id) = &r.resource_id { " " span class="muted" { (id.get(..8).unwrap_or(id)) } } }
                            @if with_tenant {
                                td { @if let Some(t) = &r.tenant_id { a href={ "/admin/tenants/" (t) } { (t.get(..8).unwrap_or(t)) } } }
                            }
                            td { @if let Some(id) = &r.request_id { code { (id) } } }
                        }
                    }
                }
            }
        }
    }
}

/// Query of the audit log pages.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    /// Only this action (`tenant.create`, …).
    pub action: Option<String>,
    /// The next page's cursor.
    pub cursor: Option<String>,
}

/// The audit log (one tenant's or everyone's) with its action filter and pages.
pub async fn audit_section(
    state: &AppState,
    tenant: Option<tenant_core::TenantId>,
    query: &AuditQuery,
    path: &str,
) -> Result<Markup, UiError> {
    let action = non_empty(&query.action);
    let filter = AuditFilter {
        action: action.map(str::to_owned),
        ..AuditFilter::default()
    };
    let request = PageRequest::parse(Some(50), non_empty(&query.cursor))?;
    let first = request.after.is_none();
    let rows = state.control.audit_log(tenant, filter, request).await?;
    let filters = format!("action={}", percent_encode(action.unwrap_or("")));
    Ok(html! {
        div class="page-head" { h1 { "Audit log" } }
        form class="filters" method="get" action=(path) role="search" {
            label for="action" class="sr-only" { "Filter by action" }
            input id="action" name="action" placeholder="Action, e.g. tenant.create" value=(action.unwrap_or(""));
            button type="submit" { "Filter" }
        }
        (audit_table(&rows.items, tenant.is_none()))
        nav class="pager" aria-label="Pages" {
            @if !first { a href={ (path) "?" (filters) } { "← Newest" } }
            @if let Some(next) = &rows.next_cursor {
                a href={ (path) "?" (filters) "&cursor=" (percent_encode(&next.encode())) } { "Older →" }
            }
        }
    })
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}
