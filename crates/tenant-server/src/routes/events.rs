//! Ingest of gateway events: `POST /events` (typed) and `POST /webhooks/message` (the prototype's
//! body). Each event is attributed to a tenant, stored once per id, and enqueued for delivery to
//! the tenant's endpoints in the same transaction — batched with the events of concurrent
//! requests (group commit, `tenant_service::group_commit`), and answered only once that batch
//! committed.

use actix_web::{HttpResponse, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tenant_store::events::Ingested;
use tenant_webhooks::ingest::EventInput;
use utoipa::ToSchema;

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{ApiJson, parse_tenant_id};
use crate::state::AppState;

/// `POST /events`: one typed gateway event.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EventRequest {
    /// The gateway's id of the event; a repeated id is accepted once.
    #[schema(example = "evt-7f3a")]
    pub id: String,
    /// `message.received`, `message.sent`, `session.started` or `session.ended`.
    #[serde(rename = "type")]
    #[schema(example = "message.received")]
    pub event_type: String,
    /// The tenant's gateway account id.
    pub account_id: Option<String>,
    /// The tenant's gateway agent id.
    pub agent_id: Option<String>,
    /// `agent:<agentId>:<channel>:<accountId>:direct:<peerId>` (or the group, room and thread
    /// shapes); any other `agent:<agentId>:<rest>` key is attributed by its agent only.
    pub session_key: Option<String>,
    /// The channel, when no session key names it.
    pub channel: Option<String>,
    /// When it happened (default: when received).
    pub timestamp: Option<DateTime<Utc>>,
    /// The event's own fields, delivered as `data`.
    #[schema(value_type = Object)]
    pub data: Option<Map<String, Value>>,
}

/// `POST /webhooks/message`: the prototype's body, still accepted (a `message.received` event).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MessageRequest {
    /// The tenant (UUID); or name it by `accountId`, `agentId` or `sessionKey`.
    pub tenant_id: Option<String>,
    /// The gateway's id of the message, for idempotency (a new one is made when absent).
    pub id: Option<String>,
    /// The channel kind.
    pub channel: Option<String>,
    /// The sender.
    pub from: Option<String>,
    /// The text.
    pub message: Option<String>,
    /// The tenant's gateway account id.
    pub account_id: Option<String>,
    /// The tenant's gateway agent id.
    pub agent_id: Option<String>,
    /// The session key.
    pub session_key: Option<String>,
}

/// An accepted event.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventAcceptedResponse {
    /// Our id of the event.
    pub event_id: String,
    /// The tenant it was attributed to.
    pub tenant_id: String,
    /// `true` when the id was seen before and nothing new was stored.
    pub duplicate: bool,
    /// Deliveries enqueued (0 for a duplicate).
    pub deliveries: usize,
}

async fn accept(state: &AppState, input: EventInput) -> Result<HttpResponse, ApiError> {
    // Written with the events of concurrent requests (group commit); answered once committed.
    let accepted = state.control.ingest(input).await?;
    let (event_id, duplicate, deliveries) = match accepted.ingested {
        Ingested::Accepted {
            event_id,
            deliveries,
        } => (event_id, false, deliveries),
        Ingested::Duplicate { event_id } => (event_id, true, 0),
    };
    Ok(HttpResponse::Accepted().json(EventAcceptedResponse {
        event_id: event_id.to_string(),
        tenant_id: accepted.tenant_id.to_string(),
        duplicate,
        deliveries,
    }))
}

/// Accepts a gateway event (gateway or operator token).
#[utoipa::path(tag = "events", request_body = EventRequest, security(("bearer" = [])), responses(
    (status = 202, description = "Accepted (or a duplicate id, accepted once)", body = EventAcceptedResponse),
    (status = 400, description = "Malformed JSON", body = ErrorBody),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 413, description = "Body too large", body = ErrorBody),
    (status = 422, description = "Invalid field, or no tenant matches the event's identifiers", body = ErrorBody),
))]
#[post("/events")]
pub async fn post_event(
    state: web::Data<AppState>,
    ApiJson(body): ApiJson<EventRequest>,
) -> Result<HttpResponse, ApiError> {
    let input = EventInput {
        id: body.id,
        event_type: body.event_type,
        tenant_id: None,
        account_id: body.account_id,
        agent_id: body.agent_id,
        session_key: body.session_key,
        channel: body.channel,
        occurred_at: body.timestamp,
        data: body.data.unwrap_or_default(),
    };
    accept(&state, input).await
}

/// Accepts a received message in the prototype's shape, as a `message.received` event.
#[utoipa::path(tag = "events", request_body = MessageRequest, security(("bearer" = [])), responses(
    (status = 202, description = "Accepted", body = EventAcceptedResponse),
    (status = 400, description = "Malformed JSON or tenant id", body = ErrorBody),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 422, description = "Invalid field, or no tenant matches", body = ErrorBody),
))]
#[post("/webhooks/message")]
pub async fn post_message(
    state: web::Data<AppState>,
    ApiJson(body): ApiJson<MessageRequest>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = body.tenant_id.as_deref().map(parse_tenant_id).transpose()?;
    let mut data = Map::new();
    for (k, v) in [("from", body.from), ("message", body.message)] {
        if let Some(v) = v {
            data.insert(k.into(), Value::String(v));
        }
    }
    let input = EventInput {
        id: body
            .id
            .unwrap_or_else(|| format!("msg-{}", uuid::Uuid::new_v4().simple())),
        event_type: "message.received".into(),
        tenant_id,
        account_id: body.account_id,
        agent_id: body.agent_id,
        session_key: body.session_key,
        channel: body.channel,
        occurred_at: None,
        data,
    };
    accept(&state, input).await
}
