//! The route table: every endpoint of the API, one module per resource.
//!
//! Handlers are thin: extract the input, call one use case of `tenant-service`, shape the
//! response; each route file holds its own request and response bodies. Each carries a `#[utoipa::path]` so `/openapi.json` is
//! generated from this table and cannot miss a route.

use utoipa_actix_web::service_config::ServiceConfig;

pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod billing;
pub mod channels;
pub mod config;
pub mod deliveries;
pub mod events;
pub mod export;
pub mod gateways;
pub mod health;
pub mod limits;
pub mod me;
pub mod metrics;
pub mod openapi;
pub mod operator_webhooks;
pub mod operators;
pub mod placement;
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
        .service(export::export_tenant)
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
        .service(metrics::metrics)
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
        .service(deliveries::replay_delivery)
        .service(operator_webhooks::create_operator_webhook)
        .service(operator_webhooks::list_operator_webhooks)
        .service(operator_webhooks::get_operator_webhook)
        .service(operator_webhooks::update_operator_webhook)
        .service(operator_webhooks::delete_operator_webhook)
        .service(limits::list_plans)
        .service(limits::get_usage)
        .service(limits::change_limits)
        .service(gateways::heartbeat)
        .service(gateways::create_gateway)
        .service(gateways::list_gateways)
        .service(gateways::place_pending)
        .service(gateways::get_gateway)
        .service(gateways::update_gateway)
        .service(gateways::delete_gateway)
        .service(gateways::drain_gateway)
        .service(gateways::rotate_gateway_token)
        .service(placement::get_placement)
        .service(placement::request_placement)
        .service(placement::update_placement)
        .service(billing::get_billing)
        .service(billing::create_checkout)
        .service(billing::create_portal)
        .service(billing::stripe_webhook);
}
