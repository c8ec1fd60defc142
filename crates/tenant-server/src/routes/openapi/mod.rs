//! `GET /openapi.json`: the OpenAPI 3.1 document, generated from the route table and completed
//! with the rules the server enforces ([`rules`], [`document`]).

use actix_web::{HttpResponse, get, web};
use utoipa::OpenApi;

use crate::http::error::ErrorBody;

pub mod document;
pub mod rules;

/// The document's fixed parts; paths and schemas are collected from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "moltbot-saas",
        description = "Control plane for running the OpenClaw (Moltbot) gateway for many tenants."
    ),
    components(schemas(ErrorBody)),
    tags(
        (name = "tenants", description = "Tenants and their gateway identities"),
        (name = "channels", description = "A tenant's messaging channels and credentials"),
        (name = "config", description = "The gateway's configuration"),
        (name = "auth", description = "Logging in with a password; access and refresh tokens"),
        (name = "users", description = "A tenant's users and their roles"),
        (name = "operators", description = "Operator users, who see every tenant"),
        (name = "api-keys", description = "A tenant's API keys"),
        (name = "audit", description = "The audit log"),
        (name = "events", description = "Gateway events and the sessions they name"),
        (name = "webhooks", description = "Tenants' webhook endpoints, deliveries and dead letters"),
        (name = "plans", description = "Plans, their limits, and tenants' usage"),
        (name = "gateways", description = "The gateway fleet: gateways, tenants' placement, heartbeats"),
        (name = "billing", description = "Stripe billing: Checkout, the customer portal, Stripe's webhook, a tenant's billing state"),
        (name = "health", description = "Probes"),
        (name = "meta", description = "The API's own description"),
    )
)]
pub struct ApiDoc;

/// The rendered document, built once per worker when the app is assembled.
#[derive(Debug, Clone)]
pub struct OpenApiJson(pub String);

/// The OpenAPI 3.1 description of this API.
#[utoipa::path(tag = "meta", security(("bearer" = [])), responses(
    (status = 200, description = "The OpenAPI document", content_type = "application/json"),
    (status = 401, description = "No valid operator token", body = ErrorBody),
))]
#[get("/openapi.json")]
pub async fn openapi_json(doc: web::Data<OpenApiJson>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(doc.0.clone())
}
