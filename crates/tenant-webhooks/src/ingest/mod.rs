//! Ingesting gateway events: validate, attribute to a tenant, build the delivery body, and store
//! it with its deliveries and session in one transaction.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use tenant_core::TenantId;
use tenant_store::events::{self, Ingested, NewEvent};
use tenant_store::sessions::SessionSeen;
use tenant_store::{AnyConnection, StoreError, write_transaction};
use uuid::Uuid;

/// The event types the gateway may send.
pub const GATEWAY_EVENT_TYPES: &[&str] = &[
    "message.received",
    "message.sent",
    "session.started",
    "session.ended",
];
/// The type of the event `POST …/test` sends.
pub const TEST_EVENT_TYPE: &str = "webhook.test";

/// Whether an endpoint may subscribe to this type.
pub fn is_known_type(t: &str) -> bool {
    GATEWAY_EVENT_TYPES.contains(&t) || t == TEST_EVENT_TYPE
}

/// A gateway session key, parsed: `agent:<agentId>:<channel>:<accountId>:direct:<peerId>`, or
/// `agent:<agentId>:<channel>:[<accountId>:]{direct|group|channel}:<id>[:thread:<id>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionKey {
    /// The agent.
    pub agent_id: String,
    /// The channel kind.
    pub channel: String,
    /// The account, when the key names one.
    pub account_id: Option<String>,
    /// `direct`, `group` or `channel`.
    pub chat_type: String,
    /// The peer, group or room id.
    pub peer_id: String,
}

impl SessionKey {
    /// Parses a key; `None` when it has none of the shapes above.
    pub fn parse(key: &str) -> Option<Self> {
        if key.len() > 512 {
            return None;
        }
        let parts: Vec<&str> = key.split(':').collect();
        if parts.len() < 5 || parts[0] != "agent" || parts[1..].iter().any(|p| p.is_empty()) {
            return None;
        }
        let is_kind = |p: &str| matches!(p, "direct" | "group" | "channel");
        let (account, kind_at) = if is_kind(parts[3]) {
            (None, 3)
        } else {
            (Some(parts[3].to_owned()), 4)
        };
        let chat_type = *parts.get(kind_at)?;
        let peer = *parts.get(kind_at + 1)?;
        let rest = &parts[kind_at + 2..];
        if !is_kind(chat_type) || !(rest.is_empty() || (rest.len() == 2 && rest[0] == "thread")) {
            return None;
        }
        Some(Self {
            agent_id: parts[1].to_owned(),
            channel: parts[2].to_owned(),
            account_id: account,
            chat_type: chat_type.to_owned(),
            peer_id: peer.to_owned(),
        })
    }
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

/// Validates, attributes and stores one event with its deliveries.
pub fn ingest(
    conn: &mut AnyConnection,
    input: EventInput,
    now: DateTime<Utc>,
) -> Result<Accepted, IngestError> {
    if input.id.is_empty() || input.id.len() > 200 || input.id.chars().any(char::is_control) {
        return Err(invalid("id", "must be 1 to 200 printable characters"));
    }
    if !GATEWAY_EVENT_TYPES.contains(&input.event_type.as_str()) {
        return Err(invalid(
            "type",
            format!("must be one of {}", GATEWAY_EVENT_TYPES.join(", ")),
        ));
    }
    let key = match input.session_key.as_deref() {
        None => None,
        Some(k) => Some(SessionKey::parse(k).ok_or_else(|| {
            invalid(
                "sessionKey",
                "is not a session key (agent:<agentId>:<channel>:<accountId>:direct:<peerId>)",
            )
        })?),
    };
    let tenant_id = attribute(conn, &input, key.as_ref())?;
    let event_id = Uuid::new_v4();
    let mut data = input.data;
    let channel = key.as_ref().map(|k| k.channel.clone()).or(input.channel);
    for (name, value) in [
        ("sessionKey", input.session_key.clone()),
        ("channel", channel),
        ("accountId", input.account_id.clone()),
        ("agentId", input.agent_id.clone()),
    ] {
        if let Some(v) = value {
            data.insert(name.into(), Value::String(v));
        }
    }
    data.insert("tenantId".into(), Value::String(tenant_id.to_string()));
    let payload = json!({
        "type": input.event_type,
        "id": format!("evt_{}", event_id.simple()),
        "timestamp": input.occurred_at.unwrap_or(now).to_rfc3339_opts(SecondsFormat::Millis, true),
        "data": data,
    });
    let session = key.map(|k| SessionSeen {
        session_key: input.session_key.unwrap_or_default(),
        channel: k.channel,
        peer_id: Some(k.peer_id),
        chat_type: k.chat_type,
    });
    let ingested = events::ingest(
        conn,
        &tenant_id,
        &NewEvent {
            id: event_id,
            source: "gateway".into(),
            source_id: input.id,
            event_type: input.event_type,
            payload: payload.to_string(),
        },
        session.as_ref(),
        now,
    )?;
    Ok(Accepted {
        tenant_id,
        ingested,
    })
}

/// The one tenant every identifier of the event points to.
fn attribute(
    conn: &mut AnyConnection,
    input: &EventInput,
    key: Option<&SessionKey>,
) -> Result<TenantId, IngestError> {
    let mut found: Vec<(&'static str, Option<TenantId>)> = Vec::new();
    if let Some(id) = input.tenant_id {
        let exists = tenant_store::tenants::exists(conn, &id)?;
        found.push(("tenantId", exists.then_some(id)));
    }
    if let Some(a) = input.account_id.as_deref() {
        found.push(("accountId", events::tenant_by_account(conn, a)?));
    }
    if let Some(a) = input.agent_id.as_deref() {
        found.push(("agentId", events::tenant_by_agent(conn, a)?));
    }
    if let Some(k) = key {
        let mut t = events::tenant_by_agent(conn, &k.agent_id)?;
        if let (Some(tenant), Some(account)) = (t, k.account_id.as_deref())
            && events::tenant_by_account(conn, account)? != Some(tenant)
        {
            t = None;
        }
        found.push(("sessionKey", t));
    }
    if found.is_empty() {
        return Err(IngestError::Unresolved {
            fields: vec!["accountId", "agentId", "sessionKey"],
            message: "the event names no accountId, agentId or sessionKey".into(),
        });
    }
    let missing: Vec<&'static str> = found
        .iter()
        .filter(|(_, t)| t.is_none())
        .map(|(f, _)| *f)
        .collect();
    if !missing.is_empty() {
        return Err(IngestError::Unresolved {
            message: format!("no tenant matches {}", missing.join(", ")),
            fields: missing,
        });
    }
    let first = found[0].1;
    if found.iter().any(|(_, t)| *t != first) {
        return Err(IngestError::Unresolved {
            fields: found.iter().map(|(f, _)| *f).collect(),
            message: "the event's identifiers name different tenants".into(),
        });
    }
    first.ok_or_else(|| IngestError::Unresolved {
        fields: vec![found[0].0],
        message: "no tenant matches".into(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_keys_of_every_shape_parse() {
        let k = SessionKey::parse("agent:a1:telegram:acc1:direct:42").unwrap();
        assert_eq!(
            (
                k.agent_id.as_str(),
                k.channel.as_str(),
                k.account_id.as_deref()
            ),
            ("a1", "telegram", Some("acc1"))
        );
        assert_eq!((k.chat_type.as_str(), k.peer_id.as_str()), ("direct", "42"));
        let g = SessionKey::parse("agent:a1:discord:group:g7").unwrap();
        assert_eq!((g.account_id, g.chat_type.as_str()), (None, "group"));
        assert!(SessionKey::parse("agent:a1:slack:acc:channel:c1:thread:t9").is_some());
        for bad in [
            "",
            "agent:a1",
            "agent:a1:main",
            "user:a1:telegram:acc:direct:1",
            "agent:a1:telegram:acc:dm:1",
            "agent::telegram:acc:direct:1",
            "agent:a1:telegram:acc:direct:1:extra",
        ] {
            assert!(SessionKey::parse(bad).is_none(), "{bad}");
        }
    }
}
