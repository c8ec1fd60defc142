//! `/tenants/{id}/channels`: a tenant's messaging channels, at most one per kind; their request
//! and response bodies (credentials shown redacted, never echoed).

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenant_core::{Channel, ChannelUpdate, NewChannel};
use utoipa::ToSchema;

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Actor, ApiJson, double_option, parse_kind, parse_tenant_id};
use crate::http::idempotency::{IdempotencyKeyHeader, OnceJson, answer, respond};
use crate::state::AppState;

/// `POST /tenants/{id}/channels`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateChannelRequest {
    /// `telegram`, `discord`, `slack`, `whatsapp` or `signal`.
    #[schema(example = "telegram")]
    pub channel: String,
    /// Whether to serve it (default `true`).
    pub enabled: Option<bool>,
    /// Name of the account on the gateway (default: the tenant's name).
    pub display_name: Option<String>,
    /// Credential fields of the kind, e.g. `{"botToken": "123:AA…"}` for telegram. May be
    /// omitted: the channel then awaits them and stays out of the gateway config.
    #[schema(value_type = Option<Object>)]
    pub credentials: Option<serde_json::Value>,
}

/// `PATCH /tenants/{id}/channels/{kind}`: only the fields present change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateChannelRequest {
    /// Switch serving on or off.
    pub enabled: Option<bool>,
    /// New display name; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub display_name: Option<Option<String>>,
    /// Credential fields to set (strings) or clear (`null`); other fields keep their values.
    #[schema(value_type = Option<Object>)]
    pub credentials: Option<serde_json::Value>,
}

/// What is shown of one credential field.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialFieldView {
    /// Whether a value is stored.
    pub set: bool,
    /// Whether the channel needs this field to be served.
    pub required: bool,
    /// Last four characters of a long secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last4: Option<String>,
    /// Whole value of a non-secret field (ids, modes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A channel of a tenant.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelResponse {
    /// Channel id (UUID).
    pub id: String,
    /// The owning tenant.
    pub tenant_id: String,
    /// The kind: `telegram`, `discord`, `slack`, `whatsapp` or `signal`.
    pub channel: String,
    /// Whether the owner wants it served.
    pub enabled: bool,
    /// Display name, if set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `ready` (in the gateway config), `disabled`, or `awaiting_credentials`.
    pub state: String,
    /// Required credential fields not yet set.
    pub missing_fields: Vec<String>,
    /// Every credential field of the kind, redacted.
    pub credentials: BTreeMap<String, CredentialFieldView>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<&Channel> for ChannelResponse {
    fn from(c: &Channel) -> Self {
        Self {
            id: c.id.to_string(),
            tenant_id: c.tenant_id.to_string(),
            channel: c.kind.as_str().to_owned(),
            enabled: c.enabled,
            display_name: c.display_name.as_ref().map(|d| d.as_str().to_owned()),
            state: c.state().as_str().to_owned(),
            missing_fields: c
                .credentials
                .missing_fields()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            credentials: c
                .credentials
                .describe()
                .into_iter()
                .map(|f| {
                    let view = CredentialFieldView {
                        set: f.set,
                        required: f.required,
                        last4: f.last4,
                        value: f.value,
                    };
                    (f.name.to_owned(), view)
                })
                .collect(),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// A tenant's channels.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChannelListResponse {
    /// The channels, in kind order.
    pub channels: Vec<ChannelResponse>,
}

/// Adds a channel. Credentials may come later (the channel then awaits them and the gateway
/// config leaves it out); the answer lists the fields still missing.
#[utoipa::path(tag = "channels", params(IdempotencyKeyHeader, ("id" = String, Path, description = "Tenant id (UUID)")), request_body = CreateChannelRequest, security(("bearer" = [])), responses(
    (status = 201, description = "Created", body = ChannelResponse),
    (status = 400, description = "Malformed id or JSON", body = ErrorBody),
    (status = 401, description = "No valid operator token", body = ErrorBody),
    (status = 404, description = "No such tenant", body = ErrorBody),
    (status = 409, description = "The tenant already has a channel of this kind", body = ErrorBody),
    (status = 413, description = "Body too large", body = ErrorBody),
    (status = 415, description = "Not JSON", body = ErrorBody),
    (status = 422, description = "Invalid kind or credentials", body = ErrorBody),
))]
#[post("/tenants/{id}/channels")]
pub async fn create_channel(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
    OnceJson(body, once): OnceJson<CreateChannelRequest>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = parse_tenant_id(&id)?;
    let new = NewChannel::parse(
        &body.channel,
        body.enabled,
        body.display_name.as_deref(),
        body.credentials.as_ref(),
    )?;
    let render = move |channel: &Channel| {
        answer(
            StatusCode::CREATED,
            Some(format!("/tenants/{tenant_id}/channels/{}", channel.kind)),
            &ChannelResponse::from(channel),
        )
    };
    let control = &state.control;
    respond(&state, once, render, |once| async move {
        let channel = control.add_channel(actor.0, tenant_id, new, once).await?;
        tracing::info!(tenant.id = %tenant_id, channel.kind = %channel.kind, "channel created");
        Ok(channel)
    })
    .await
}

/// Lists a tenant's channels.
#[utoipa::path(tag = "channels", params(("id" = String, Path, description = "Tenant id (UUID)")), security(("bearer" = [])), responses(
    (status = 200, description = "The channels", body = ChannelListResponse),
    (status = 400, description = "Malformed id", body = ErrorBody),
    (status = 401, description = "No valid operator token", body = ErrorBody),
    (status = 404, description = "No such tenant", body = ErrorBody),
))]
#[get("/tenants/{id}/channels")]
pub async fn list_channels(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = parse_tenant_id(&id)?;
    let channels = state.control.list_channels(tenant_id).await?;
    Ok(HttpResponse::Ok().json(ChannelListResponse {
        channels: channels.iter().map(ChannelResponse::from).collect(),
    }))
}

/// Reads one channel.
#[utoipa::path(tag = "channels", params(
    ("id" = String, Path, description = "Tenant id (UUID)"),
    ("kind" = String, Path, description = "Channel kind"),
), security(("bearer" = [])), responses(
    (status = 200, description = "The channel", body = ChannelResponse),
    (status = 400, description = "Malformed id or kind", body = ErrorBody),
    (status = 401, description = "No valid operator token", body = ErrorBody),
    (status = 404, description = "No such tenant or channel", body = ErrorBody),
))]
#[get("/tenants/{id}/channels/{kind}")]
pub async fn get_channel(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = parse_tenant_id(&path.0)?;
    let kind = parse_kind(&path.1)?;
    let channel = state.control.channel(tenant_id, kind).await?;
    Ok(HttpResponse::Ok().json(ChannelResponse::from(&channel)))
}

/// Changes a channel: enable or disable it, rename it, set or clear credential fields.
#[utoipa::path(tag = "channels", params(
    ("id" = String, Path, description = "Tenant id (UUID)"),
    ("kind" = String, Path, description = "Channel kind"),
), request_body = UpdateChannelRequest, security(("bearer" = [])), responses(
    (status = 200, description = "The updated channel", body = ChannelResponse),
    (status = 400, description = "Malformed id, kind or JSON", body = ErrorBody),
    (status = 401, description = "No valid operator token", body = ErrorBody),
    (status = 404, description = "No such tenant or channel", body = ErrorBody),
    (status = 422, description = "Invalid field", body = ErrorBody),
))]
#[patch("/tenants/{id}/channels/{kind}")]
pub async fn update_channel(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<(String, String)>,
    ApiJson(body): ApiJson<UpdateChannelRequest>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = parse_tenant_id(&path.0)?;
    let kind = parse_kind(&path.1)?;
    let update = ChannelUpdate::parse(
        kind,
        body.enabled,
        body.display_name.as_ref().map(Option::as_deref),
        body.credentials.as_ref(),
    )?;
    let channel = state
        .control
        .update_channel(actor.0, tenant_id, kind, update)
        .await?;
    Ok(HttpResponse::Ok().json(ChannelResponse::from(&channel)))
}

/// Removes a channel.
#[utoipa::path(tag = "channels", params(
    ("id" = String, Path, description = "Tenant id (UUID)"),
    ("kind" = String, Path, description = "Channel kind"),
), security(("bearer" = [])), responses(
    (status = 204, description = "Deleted"),
    (status = 400, description = "Malformed id or kind", body = ErrorBody),
    (status = 401, description = "No valid operator token", body = ErrorBody),
    (status = 404, description = "No such tenant or channel", body = ErrorBody),
))]
#[delete("/tenants/{id}/channels/{kind}")]
pub async fn delete_channel(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = parse_tenant_id(&path.0)?;
    let kind = parse_kind(&path.1)?;
    state
        .control
        .delete_channel(actor.0, tenant_id, kind)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
