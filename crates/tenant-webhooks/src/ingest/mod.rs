//! Ingesting gateway events: validate, attribute to a tenant, build the delivery body, and store
//! it with its deliveries and session in one transaction.
//!
//! Requests are [`validate`]d one by one; an [`Ingestor`] then attributes and stores the events
//! of concurrent requests together (group commit, see [`batch`]), through a cache of gateway
//! ids whose correctness does not depend on time ([`attribute`]). [`ingest`] does the same for
//! one event without the cache.

mod attribute;
mod batch;
mod payload;
mod session_key;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use tenant_core::TenantId;
use tenant_store::StoreError;
use tenant_store::event_batch::EventToStore;
use tenant_store::events::{self, Ingested, NewEvent};
use tenant_store::sessions::SessionSeen;
use tenant_store::{AnyConnection, write_transaction};
use uuid::Uuid;

pub use attribute::TenantLookup;
pub use batch::{IngestedBatch, Ingestor};
pub use session_key::{SessionKey, agent_of};

/// The event types the gateway may send.
pub const GATEWAY_EVENT_TYPES: &[&str] = &[
    "message.received",
    "message.sent",
    "session.started",
    "session.ended",
];
/// The type of the event `POST …/test` sends.
pub const TEST_EVENT_TYPE: &str = "webhook.test";

/// The events the control plane sends about a tenant's usage (soft and hard message quota).
pub const USAGE_EVENT_TYPES: &[&str] = &["usage.threshold", "usage.exceeded"];

/// The longest event id, in bytes.
pub const MAX_EVENT_ID_LEN: usize = 200;

/// The events the control plane sends about a tenant's billing (suspended when its grace period
/// ran out, restored when paid).
pub const BILLING_EVENT_TYPES: &[&str] = &["billing.suspended", "billing.restored"];

/// The events the control plane sends to the operator's endpoints (`/operator/webhooks`) about
/// the gateway fleet: a tenant with no room on any gateway, a tenant placed again, a gateway
/// whose lease lapsed while it held tenants. A tenant's endpoint cannot subscribe to them.
pub const OPERATOR_EVENT_TYPES: &[&str] = &["tenant.unplaced", "tenant.placed", "gateway.stranded"];

/// Whether an operator endpoint may subscribe to this type.
pub fn is_operator_type(t: &str) -> bool {
    OPERATOR_EVENT_TYPES.contains(&t)
}

/// Whether an endpoint may subscribe to this type.
pub fn is_known_type(t: &str) -> bool {
    GATEWAY_EVENT_TYPES.contains(&t)
        || USAGE_EVENT_TYPES.contains(&t)
        || BILLING_EVENT_TYPES.contains(&t)
        || t == TEST_EVENT_TYPE
}

/// An event as received.
#[derive(Debug, Clone, Default)]
pub struct EventInput {
    /// The gateway's id of the event (idempotency key).
    pub id: String,
    /// The type.
    pub event_type: String,
    /// A tenant named directly (the prototype's body), if any.
    pub tenant_id: Option<TenantId>,
    /// The gateway account id.
    pub account_id: Option<String>,
    /// The gateway agent id.
    pub agent_id: Option<String>,
    /// The session key.
    pub session_key: Option<String>,
    /// The channel, when no session key names it.
    pub channel: Option<String>,
    /// When it happened (default: when received).
    pub occurred_at: Option<DateTime<Utc>>,
    /// The event's own fields.
    pub data: Map<String, Value>,
}

/// Why an event was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A field is malformed.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The event could not be attributed to one tenant.
    #[error("{message}")]
    Unresolved {
        /// The identifiers that resolved to nothing or disagreed.
        fields: Vec<&'static str>,
        /// A sentence.
        message: String,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &'static str, message: impl Into<String>) -> IngestError {
    IngestError::Invalid {
        field,
        message: message.into(),
    }
}

/// The result of [`ingest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// The tenant the event belongs to.
    pub tenant_id: TenantId,
    /// Stored or duplicate.
    pub ingested: Ingested,
}

/// An event whose fields passed validation, ready to be attributed and stored.
#[derive(Debug, Clone)]
pub struct ValidEvent {
    input: EventInput,
    /// The session key, parsed, when it names a channel peer.
    key: Option<SessionKey>,
    /// The agent of a session key that names none (`agent:<id>:main`, subagent, cron).
    key_agent: Option<String>,
}

impl ValidEvent {
    /// The event as received.
    pub fn input(&self) -> &EventInput {
        &self.input
    }
}

/// Checks an event's own fields (id, type, session key); attribution needs the database and
/// comes later.
pub fn validate(input: EventInput) -> Result<ValidEvent, IngestError> {
    if input.id.is_empty()
        || input.id.len() > MAX_EVENT_ID_LEN
        || input.id.chars().any(char::is_control)
    {
        return Err(invalid("id", "must be 1 to 200 printable characters"));
    }
    if !GATEWAY_EVENT_TYPES.contains(&input.event_type.as_str()) {
        return Err(invalid(
            "type",
            format!("must be one of {}", GATEWAY_EVENT_TYPES.join(", ")),
        ));
    }
    let (key, key_agent) = match input.session_key.as_deref() {
        None => (None, None),
        Some(k) => match SessionKey::parse(k) {
            Some(key) => (Some(key), None),
            // A session of the agent's own (main, subagent, cron): attributed by its agent,
            // without a session row, which needs a channel and a peer.
            None => {
                let agent = session_key::agent_of(k).ok_or_else(|| {
                    invalid(
                        "sessionKey",
                        "is not a session key (agent:<agentId>:<channel>:<accountId>:direct:<peerId>, or agent:<agentId>:<rest>)",
                    )
                })?;
                (None, Some(agent.to_owned()))
            }
        },
    };
    Ok(ValidEvent {
        input,
        key,
        key_agent,
    })
}

/// Validates, attributes and stores one event with its deliveries, reading every identifier
/// from the database (no cache). Concurrent requests go through [`Ingestor::ingest_batch`].
pub fn ingest(
    conn: &mut AnyConnection,
    input: EventInput,
    now: DateTime<Utc>,
) -> Result<Accepted, IngestError> {
    // Nobody judges quotas here: the usage counters it added to are left unread.
    batch::ingest_one_fresh(conn, None, &validate(input)?, now, &mut Vec::new())
}

/// The event as stored for its tenant: our id, the delivery body (the event's data with the
/// identifiers it was attributed by and the tenant id), and the session it names.
fn to_store(
    valid: &ValidEvent,
    tenant_id: TenantId,
    now: DateTime<Utc>,
) -> Result<EventToStore, IngestError> {
    let input = &valid.input;
    let event_id = Uuid::new_v4();
    let channel = valid
        .key
        .as_ref()
        .map(|k| k.channel.as_str())
        .or(input.channel.as_deref());
    let tenant = tenant_id.to_string();
    let set = [
        ("sessionKey", input.session_key.as_deref()),
        ("channel", channel),
        ("accountId", input.account_id.as_deref()),
        ("agentId", input.agent_id.as_deref()),
        ("tenantId", Some(tenant.as_str())),
    ];
    let payload = payload::Body {
        event_type: &input.event_type,
        id: &format!("evt_{}", event_id.simple()),
        timestamp: &input
            .occurred_at
            .unwrap_or(now)
            .to_rfc3339_opts(SecondsFormat::Millis, true),
        own: &input.data,
        set: &set,
    }
    .to_json()
    .map_err(|e| invalid("data", e.to_string()))?;
    let session = valid.key.as_ref().map(|k| SessionSeen {
        session_key: input.session_key.clone().unwrap_or_default(),
        channel: k.channel.clone(),
        peer_id: Some(k.peer_id.clone()),
        chat_type: k.chat_type.clone(),
    });
    Ok(EventToStore {
        tenant_id,
        event: NewEvent {
            id: event_id,
            source: "gateway".into(),
            source_id: input.id.clone(),
            event_type: input.event_type.clone(),
            payload,
        },
        session,
        at: now,
    })
}

/// Stores a `webhook.test` event for one endpoint and enqueues its delivery.
pub fn enqueue_test(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    endpoint_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Uuid, StoreError> {
    write_transaction(conn, |c| {
        tenant_store::webhooks::find(c, tenant_id, endpoint_id)?;
        let event_id = Uuid::new_v4();
        let payload = json!({
            "type": TEST_EVENT_TYPE,
            "id": format!("evt_{}", event_id.simple()),
            "timestamp": now.to_rfc3339_opts(SecondsFormat::Millis, true),
            "data": {"tenantId": tenant_id.to_string(), "endpointId": endpoint_id.to_string()},
        });
        events::insert_only(
            c,
            tenant_id,
            &NewEvent {
                id: event_id,
                source: "test".into(),
                source_id: event_id.to_string(),
                event_type: TEST_EVENT_TYPE.into(),
                payload: payload.to_string(),
            },
            now,
        )?;
        events::enqueue(c, tenant_id, event_id, endpoint_id, now)
    })
}
