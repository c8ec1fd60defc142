//! Request and response bodies of events, sessions and webhooks (camelCase JSON).

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use tenant_store::deliveries::{AttemptRow, DeliveryRow};
use tenant_store::sessions::SessionRow;
use tenant_store::webhooks::Endpoint;
use utoipa::{IntoParams, ToSchema};

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

/// `POST /tenants/{id}/webhooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateWebhookRequest {
    /// Where deliveries are POSTed (`https://…`; `http://` unless https is required).
    #[schema(example = "https://example.com/hooks/moltbot")]
    pub url: String,
    /// Event types to deliver; absent or empty: all.
    pub event_types: Option<Vec<String>>,
    /// Free text, at most 500 characters.
    pub description: Option<String>,
    /// Whether deliveries are made (default true).
    pub enabled: Option<bool>,
}

/// `PATCH /tenants/{id}/webhooks/{wid}`: only the fields present change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateWebhookRequest {
    /// New URL.
    pub url: Option<String>,
    /// New filter (empty: all).
    pub event_types: Option<Vec<String>>,
    /// New description; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// Enable (also clears an automatic disable) or disable.
    pub enabled: Option<bool>,
}

fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A webhook endpoint (never its secret).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookResponse {
    /// Endpoint id (UUID).
    pub id: String,
    /// The tenant.
    pub tenant_id: String,
    /// Destination.
    pub url: String,
    /// Free text.
    pub description: Option<String>,
    /// Event types delivered; empty: all.
    pub event_types: Vec<String>,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// `gone` (answered 410) or `failing` (failed past the grace period) when disabled
    /// automatically.
    pub disabled_reason: Option<String>,
    /// Since when every delivery has failed.
    pub failing_since: Option<DateTime<Utc>>,
    /// Until when deliveries also carry the previous secret's signature.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Changed.
    pub updated_at: DateTime<Utc>,
}

impl From<&Endpoint> for WebhookResponse {
    fn from(e: &Endpoint) -> Self {
        Self {
            id: e.id.to_string(),
            tenant_id: e.tenant_id.to_string(),
            url: e.url.clone(),
            description: e.description.clone(),
            event_types: e.event_types.clone(),
            enabled: e.enabled,
            disabled_reason: e.disabled_reason.clone(),
            failing_since: e.failing_since,
            previous_secret_expires_at: e.previous_secret_expires_at,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// A created endpoint (or a rotated secret) with its signing secret, shown this once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookWithSecretResponse {
    /// The endpoint.
    #[serde(flatten)]
    pub endpoint: WebhookResponse,
    /// `whsec_…`: verify deliveries with it. Not shown again.
    pub secret: String,
}

/// A tenant's endpoints.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookListResponse {
    /// The endpoints, oldest first.
    pub webhooks: Vec<WebhookResponse>,
}

/// Query of the deliveries list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListDeliveriesQuery {
    /// Page size, 1–500 (default 50).
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Only `pending`, `succeeded` or `failed` (dead letters).
    pub status: Option<String>,
}

/// Query of the sessions list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListSessionsQuery {
    /// Page size, 1–500 (default 50).
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// One delivery.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryResponse {
    /// Delivery id (UUID); the `webhook-id` header is `msg_` + its hex.
    pub id: String,
    /// The endpoint.
    pub endpoint_id: String,
    /// The event.
    pub event_id: String,
    /// `pending`, `succeeded` or `failed` (a dead letter).
    pub status: String,
    /// Attempts made (since the last replay).
    pub attempts: i32,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The last response status.
    pub last_status_code: Option<i32>,
    /// The last error.
    pub last_error: Option<String>,
    /// Enqueued.
    pub created_at: DateTime<Utc>,
    /// Finished.
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<&DeliveryRow> for DeliveryResponse {
    fn from(d: &DeliveryRow) -> Self {
        Self {
            id: d.id.clone(),
            endpoint_id: d.endpoint_id.clone(),
            event_id: d.event_id.clone(),
            status: d.status.clone(),
            attempts: d.attempts,
            next_attempt_at: (d.status == "pending").then(|| utc(d.next_attempt_at)),
            last_status_code: d.last_status_code,
            last_error: d.last_error.clone(),
            created_at: utc(d.created_at),
            completed_at: d.completed_at.map(utc),
        }
    }
}

/// A page of deliveries.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryListResponse {
    /// Deliveries, oldest first.
    pub deliveries: Vec<DeliveryResponse>,
    /// Cursor of the next page, when there is one.
    pub next_cursor: Option<String>,
}

/// One attempt.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptResponse {
    /// Its number (restarting at 1 after a replay).
    pub attempt: i32,
    /// `success`, `http_error`, `timeout`, `connect_error` or `refused`.
    pub outcome: String,
    /// The response status.
    pub status_code: Option<i32>,
    /// Milliseconds to the response or failure.
    pub latency_ms: i64,
    /// What went wrong.
    pub error: Option<String>,
    /// The first KiB of the response body.
    pub response_excerpt: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<&AttemptRow> for AttemptResponse {
    fn from(a: &AttemptRow) -> Self {
        Self {
            attempt: a.attempt,
            outcome: a.outcome.clone(),
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            error: a.error.clone(),
            response_excerpt: a.response_excerpt.clone(),
            created_at: utc(a.created_at),
        }
    }
}

/// A delivery with its attempts.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryDetailResponse {
    /// The delivery.
    #[serde(flatten)]
    pub delivery: DeliveryResponse,
    /// Its attempts, in order.
    pub attempts_log: Vec<AttemptResponse>,
}

/// A gateway session.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionResponse {
    /// The gateway's session key.
    pub session_key: String,
    /// Channel kind.
    pub channel: String,
    /// Peer, group or room id.
    pub peer_id: Option<String>,
    /// `direct`, `group` or `channel`.
    pub chat_type: String,
    /// First seen.
    pub created_at: DateTime<Utc>,
    /// Last event.
    pub last_activity_at: DateTime<Utc>,
}

impl From<&SessionRow> for SessionResponse {
    fn from(s: &SessionRow) -> Self {
        Self {
            session_key: s.session_key.clone(),
            channel: s.channel.clone(),
            peer_id: s.peer_id.clone(),
            chat_type: s.chat_type.clone(),
            created_at: utc(s.created_at),
            last_activity_at: utc(s.last_activity_at),
        }
    }
}

/// A page of sessions.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionListResponse {
    /// Sessions, oldest first.
    pub sessions: Vec<SessionResponse>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}
