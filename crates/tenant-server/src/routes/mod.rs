//! The route table: every endpoint of the API, one module per resource.
//!
//! Handlers are thin: extract and validate input, run a use case from [`crate::service`] on the
//! blocking pool, shape the response. Each carries a `#[utoipa::path]` so `/openapi.json` is
//! generated from this table and cannot miss a route.

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload};
use serde_json::json;
use tenant_core::{ChannelKind, TenantId, ValidationError};
use tenant_store::audit::AuditContext;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::ApiError;
use crate::principal::Principal;
use crate::request_log::audit_context;

pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod channels;
pub mod config;
pub mod deliveries;
pub mod events;
pub mod health;
pub mod me;
pub mod openapi;
pub mod operators;
pub mod sessions;
pub mod tenants;
pub mod users;
pub mod webhooks;

/// Registers every route.
pub fn configure(cfg: &mut ServiceConfig<'_>) {
    // The gateway's ingest routes come first: actix tries routes in this order (and the
    // authentication middleware's pattern lookup walks them alike), and these are the busiest
    // ones; no other route can match their paths.
    cfg.service(health::health)
        .service(health::ready)
        .service(events::post_event)
        .service(events::post_message)
        .service(tenants::create_tenant)
        .service(tenants::list_tenants)
        .service(tenants::get_tenant)
        .service(tenants::update_tenant)
        .service(tenants::delete_tenant)
        .service(channels::create_channel)
        .service(channels::list_channels)
        .service(channels::get_channel)
        .service(channels::update_channel)
        .service(channels::delete_channel)
        .service(config::get_config)
        .service(config::get_tenant_config)
        .service(api_keys::create_api_key)
        .service(api_keys::list_api_keys)
        .service(api_keys::revoke_api_key)
        .service(api_keys::rotate_api_key)
        .service(audit::list_tenant_audit)
        .service(audit::list_audit)
        .service(me::me)
        .service(openapi::openapi_json)
        .service(auth::login)
        .service(auth::refresh)
        .service(auth::logout)
        .service(auth::change_password)
        .service(auth::accept_invite)
        .service(users::create_user)
        .service(users::list_users)
        .service(users::get_user)
        .service(users::update_user)
        .service(users::delete_user)
        .service(operators::create_operator)
        .service(operators::list_operators)
        .service(sessions::list_sessions)
        .service(webhooks::create_webhook)
        .service(webhooks::list_webhooks)
        .service(webhooks::get_webhook)
        .service(webhooks::update_webhook)
        .service(webhooks::delete_webhook)
        .service(webhooks::rotate_webhook_secret)
        .service(webhooks::test_webhook)
        .service(deliveries::list_deliveries)
        .service(deliveries::get_delivery)
        .service(deliveries::replay_delivery);
}

/// The caller of a mutating request, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor(pub AuditContext);

impl FromRequest for Actor {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(actor) = req
            .extensions()
            .get::<Principal>()
            .map(|p| p.actor().clone())
        else {
            return ready(Err(ApiError::Unauthorized));
        };
        ready(Ok(Actor(audit_context(req, actor.kind(), actor.id()))))
    }
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Principal>()
                .cloned()
                .ok_or(ApiError::Unauthorized),
        )
    }
}

fn bad_path(field: &'static str, e: ValidationError) -> ApiError {
    ApiError::BadRequest {
        code: "invalid_path",
        message: format!("{field}: {}", e.message),
        details: json!({ "field": field }),
    }
}

/// Parses the `{id}` path segment.
pub fn parse_tenant_id(raw: &str) -> Result<TenantId, ApiError> {
    raw.parse().map_err(|e| bad_path("id", e))
}

/// Parses the `{kind}` path segment.
pub fn parse_kind(raw: &str) -> Result<ChannelKind, ApiError> {
    raw.parse().map_err(|e| bad_path("kind", e))
}
