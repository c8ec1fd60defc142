//! `/tenants/{id}/channels`: a tenant's messaging channels, at most one per kind.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use tenant_core::{ChannelUpdate, NewChannel};
use tenant_store::channels as store;

use super::{Actor, parse_kind, parse_tenant_id};
use crate::dto::{
    ChannelListResponse, ChannelResponse, CreateChannelRequest, UpdateChannelRequest,
};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::service;
use crate::state::AppState;

/// Adds a channel. Credentials may come later (the channel then awaits them and the gateway
/// config leaves it out); the answer lists the fields still missing.
#[utoipa::path(tag = "channels", params(("id" = String, Path, description = "Tenant id (UUID)")), request_body = CreateChannelRequest, security(("bearer" = [])), responses(
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
    ApiJson(body): ApiJson<CreateChannelRequest>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = parse_tenant_id(&id)?;
    let new = NewChannel::parse(
        &body.channel,
        body.enabled,
        body.display_name.as_deref(),
        body.credentials.as_ref(),
    )?;
    let keys = state.keys.clone();
    let channel = state
        .run(move |c| {
            Ok(service::create_channel(
                c, &actor.0, &tenant_id, new, &keys,
            )?)
        })
        .await?;
    tracing::info!(tenant.id = %tenant_id, channel.kind = %channel.kind, "channel created");
    Ok(HttpResponse::Created()
        .insert_header((
            "Location",
            format!("/tenants/{tenant_id}/channels/{}", channel.kind),
        ))
        .json(ChannelResponse::from(&channel)))
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
    let keys = state.keys.clone();
    let channels = state
        .run(move |c| {
            if !tenant_store::tenants::exists(c, &tenant_id)? {
                return Err(ApiError::NotFound("tenant"));
            }
            Ok(store::list(c, &tenant_id, &keys)?)
        })
        .await?;
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
    let keys = state.keys.clone();
    let channel = state
        .run(move |c| Ok(store::find(c, &tenant_id, kind, &keys)?))
        .await?;
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
    let keys = state.keys.clone();
    let channel = state
        .run(move |c| {
            Ok(service::update_channel(
                c, &actor.0, &tenant_id, kind, update, &keys,
            )?)
        })
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
        .run(move |c| Ok(service::delete_channel(c, &actor.0, &tenant_id, kind)?))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
