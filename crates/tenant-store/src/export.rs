//! The rows of a tenant's export, as JSON records (`{"type": …, …}`), a page at a time so an
//! export of any size holds one page in memory: the small tables whole, events by keyset on
//! `(created_at, id)` (the `(tenant_id, created_at)` index) each with its deliveries and their
//! attempts (by the `event_id` and `delivery_id` indexes), sessions by key, audit entries by
//! `(created_at, id)`. No secret leaves here: no password hash, key hash, invite hash or signing
//! secret is selected at all.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::{Value, json};
use tenant_core::TenantId;

use crate::schema::{
    api_keys, audit_log, events, sessions, tenant_users, webhook_attempts, webhook_deliveries,
    webhook_endpoints,
};
use crate::{AnyConnection, StoreResult};

/// Where a keyset page of events or audit entries stops: `(created_at, id)` of its last row.
pub type After = Option<(NaiveDateTime, String)>;

fn at(t: NaiveDateTime) -> String {
    t.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn at_opt(t: Option<NaiveDateTime>) -> Value {
    t.map_or(Value::Null, |t| Value::String(at(t)))
}

/// The tenant's users (no password or invite hashes), API keys (metadata, no hashes) and webhook
/// endpoints (no secrets), one record each.
pub fn small_records(conn: &mut AnyConnection, tenant: &TenantId) -> StoreResult<Vec<Value>> {
    let id = tenant.to_string();
    let mut out = Vec::new();
    let users: Vec<(
        String,
        String,
        String,
        bool,
        NaiveDateTime,
        Option<NaiveDateTime>,
    )> = tenant_users::table
        .filter(tenant_users::tenant_id.eq(&id))
        .order((tenant_users::created_at, tenant_users::id))
        .select((
            tenant_users::id,
            tenant_users::email,
            tenant_users::role,
            tenant_users::disabled,
            tenant_users::created_at,
            tenant_users::last_login_at,
        ))
        .load(conn)?;
    for (uid, email, role, disabled, created, login) in users {
        out.push(json!({
            "type": "user", "id": uid, "email": email, "role": role, "disabled": disabled,
            "createdAt": at(created), "lastLoginAt": at_opt(login),
        }));
    }
    type KeyRow = (
        String,
        String,
        String,
        String,
        NaiveDateTime,
        Option<NaiveDateTime>,
        Option<NaiveDateTime>,
        Option<NaiveDateTime>,
    );
    let keys: Vec<KeyRow> = api_keys::table
        .filter(api_keys::tenant_id.eq(&id))
        .order((api_keys::created_at, api_keys::id))
        .select((
            api_keys::id,
            api_keys::name,
            api_keys::prefix,
            api_keys::role,
            api_keys::created_at,
            api_keys::last_used_at,
            api_keys::expires_at,
            api_keys::revoked_at,
        ))
        .load(conn)?;
    for (kid, name, prefix, role, created, used, expires, revoked) in keys {
        out.push(json!({
            "type": "api_key", "id": kid, "name": name, "prefix": prefix, "role": role,
            "createdAt": at(created), "lastUsedAt": at_opt(used), "expiresAt": at_opt(expires),
            "revokedAt": at_opt(revoked),
        }));
    }
    type EndpointRow = (
        String,
        String,
        Option<String>,
        String,
        bool,
        Option<String>,
        NaiveDateTime,
    );
    let endpoints: Vec<EndpointRow> = webhook_endpoints::table
        .filter(webhook_endpoints::tenant_id.eq(&id))
        .order((webhook_endpoints::created_at, webhook_endpoints::id))
        .select((
            webhook_endpoints::id,
            webhook_endpoints::url,
            webhook_endpoints::description,
            webhook_endpoints::event_types,
            webhook_endpoints::enabled,
            webhook_endpoints::disabled_reason,
            webhook_endpoints::created_at,
        ))
        .load(conn)?;
    for (eid, url, description, types, enabled, reason, created) in endpoints {
        let types: Value = serde_json::from_str(&types).unwrap_or(Value::String(types));
        out.push(json!({
            "type": "webhook_endpoint", "id": eid, "url": url, "description": description,
            "eventTypes": types, "enabled": enabled, "disabledReason": reason,
            "createdAt": at(created),
        }));
    }
    Ok(out)
}

/// A page of at most `limit` of the tenant's events after `after`, each followed by its
/// deliveries, each of those by its attempts; and where the next page starts (`None`: the last).
pub fn events_page(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    after: &After,
    limit: i64,
) -> StoreResult<(Vec<Value>, After)> {
    let mut query = events::table
        .filter(events::tenant_id.eq(tenant.to_string()))
        .order((events::created_at, events::id))
        .select((
            events::id,
            events::source,
            events::source_id,
            events::event_type,
            events::payload,
            events::created_at,
        ))
        .limit(limit)
        .into_boxed();
    if let Some((t, id)) = after {
        query = query.filter(
            events::created_at
                .gt(*t)
                .or(events::created_at.eq(*t).and(events::id.gt(id.clone()))),
        );
    }
    let rows: Vec<(String, String, String, String, String, NaiveDateTime)> = query.load(conn)?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| (r.5, r.0.clone())))
        .flatten();
    let ids: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    type DeliveryRow = (
        String,
        String,
        String,
        String,
        i32,
        Option<i32>,
        NaiveDateTime,
        Option<NaiveDateTime>,
    );
    let deliveries: Vec<DeliveryRow> = webhook_deliveries::table
        .filter(webhook_deliveries::event_id.eq_any(&ids))
        .order(webhook_deliveries::id)
        .select((
            webhook_deliveries::id,
            webhook_deliveries::event_id,
            webhook_deliveries::endpoint_id,
            webhook_deliveries::status,
            webhook_deliveries::attempts,
            webhook_deliveries::last_status_code,
            webhook_deliveries::created_at,
            webhook_deliveries::completed_at,
        ))
        .load(conn)?;
    let delivery_ids: Vec<&str> = deliveries.iter().map(|d| d.0.as_str()).collect();
    type AttemptRow = (
        String,
        i32,
        String,
        Option<i32>,
        i64,
        Option<String>,
        NaiveDateTime,
    );
    let attempts: Vec<AttemptRow> = webhook_attempts::table
        .filter(webhook_attempts::delivery_id.eq_any(&delivery_ids))
        .order((webhook_attempts::delivery_id, webhook_attempts::attempt))
        .select((
            webhook_attempts::delivery_id,
            webhook_attempts::attempt,
            webhook_attempts::outcome,
            webhook_attempts::status_code,
            webhook_attempts::latency_ms,
            webhook_attempts::error,
            webhook_attempts::created_at,
        ))
        .load(conn)?;
    let mut out = Vec::with_capacity(rows.len() + deliveries.len());
    for (eid, source, source_id, event_type, payload, created) in rows {
        let payload: Value = serde_json::from_str(&payload).unwrap_or(Value::String(payload));
        out.push(json!({
            "type": "event", "id": eid, "source": source, "sourceId": source_id,
            "eventType": event_type, "payload": payload, "createdAt": at(created),
        }));
        for d in deliveries.iter().filter(|d| d.1 == eid) {
            let tries: Vec<Value> = attempts
                .iter()
                .filter(|a| a.0 == d.0)
                .map(|a| {
                    json!({
                        "attempt": a.1, "outcome": a.2, "statusCode": a.3, "latencyMs": a.4,
                        "error": a.5, "createdAt": at(a.6),
                    })
                })
                .collect();
            out.push(json!({
                "type": "delivery", "id": d.0, "eventId": d.1, "endpointId": d.2,
                "status": d.3, "attempts": d.4, "lastStatusCode": d.5,
                "createdAt": at(d.6), "completedAt": at_opt(d.7), "attemptLog": tries,
            }));
        }
    }
    Ok((out, next))
}

/// A page of at most `limit` of the tenant's sessions after the session key `after`, and the
/// key the next page starts after (`None`: the last).
pub fn sessions_page(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    after: Option<&str>,
    limit: i64,
) -> StoreResult<(Vec<Value>, Option<String>)> {
    let mut query = sessions::table
        .filter(sessions::tenant_id.eq(tenant.to_string()))
        .order(sessions::session_key)
        .select((
            sessions::session_key,
            sessions::channel,
            sessions::peer_id,
            sessions::chat_type,
            sessions::created_at,
            sessions::last_activity_at,
        ))
        .limit(limit)
        .into_boxed();
    if let Some(key) = after {
        query = query.filter(sessions::session_key.gt(key.to_owned()));
    }
    let rows: Vec<(
        String,
        String,
        Option<String>,
        String,
        NaiveDateTime,
        NaiveDateTime,
    )> = query.load(conn)?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.0.clone()))
        .flatten();
    let out = rows
        .into_iter()
        .map(|(key, channel, peer, chat, created, active)| {
            json!({
                "type": "session", "sessionKey": key, "channel": channel, "peerId": peer,
                "chatType": chat, "createdAt": at(created), "lastActivityAt": at(active),
            })
        })
        .collect();
    Ok((out, next))
}

/// A page of at most `limit` of the tenant's audit entries after `after` (oldest first), and
/// where the next page starts (`None`: the last).
pub fn audit_page(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    after: &After,
    limit: i64,
) -> StoreResult<(Vec<Value>, After)> {
    let mut query = audit_log::table
        .filter(audit_log::tenant_id.eq(tenant.to_string()))
        .order((audit_log::created_at, audit_log::id))
        .select((
            audit_log::id,
            audit_log::actor_type,
            audit_log::actor_id,
            audit_log::action,
            audit_log::resource_type,
            audit_log::resource_id,
            audit_log::details,
            audit_log::created_at,
        ))
        .limit(limit)
        .into_boxed();
    if let Some((t, id)) = after {
        query = query.filter(
            audit_log::created_at.gt(*t).or(audit_log::created_at
                .eq(*t)
                .and(audit_log::id.gt(id.clone()))),
        );
    }
    type Row = (
        String,
        String,
        Option<String>,
        String,
        String,
        Option<String>,
        Option<String>,
        NaiveDateTime,
    );
    let rows: Vec<Row> = query.load(conn)?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| (r.7, r.0.clone())))
        .flatten();
    let out = rows
        .into_iter()
        .map(
            |(aid, actor_type, actor_id, action, rtype, rid, details, created)| {
                let details = details.map(|d| serde_json::from_str(&d).unwrap_or(Value::String(d)));
                json!({
                    "type": "audit", "id": aid, "actorType": actor_type, "actorId": actor_id,
                    "action": action, "resourceType": rtype, "resourceId": rid, "details": details,
                    "createdAt": at(created),
                })
            },
        )
        .collect();
    Ok((out, next))
}
