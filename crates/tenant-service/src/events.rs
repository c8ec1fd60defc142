//! Events the gateway reports and the sessions they name: checking an event before it is
//! queued for the ingest write path (group commit, see [`crate::group_commit::write_paths`]),
//! reading a tenant's sessions, and storing the events the control plane itself sends about a
//! tenant (usage, billing).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;
use tenant_core::{Page, PageRequest, TenantId};
use tenant_store::AnyConnection;
use tenant_store::events::NewEvent;
use tenant_store::sessions::{self, SessionRow};
use tenant_webhooks::ingest::{self, EventInput, ValidEvent};

use crate::error::ServiceResult;
use crate::tenant_scope::require_tenant;

/// Checks an event's fields (type, ids, sizes); the tenant it names is resolved when it is
/// written.
pub fn check(input: EventInput) -> ServiceResult<ValidEvent> {
    Ok(ingest::validate(input)?)
}

/// A tenant's gateway sessions, oldest first (`NotFound("tenant")` for a missing tenant).
pub fn list_sessions(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    page: &PageRequest,
) -> ServiceResult<Page<SessionRow>> {
    require_tenant(conn, tenant_id)?;
    Ok(sessions::list(conn, tenant_id, page)?)
}

/// Stores an event the control plane itself sends about a tenant (`source` `usage`, `billing`)
/// as `{"type", "id", "timestamp", "data"}`, with its deliveries to the tenant's endpoints
/// subscribed to it, in the caller's transaction. `source_id` makes it once: storing the same
/// source id again does nothing.
pub fn emit(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    source: &str,
    event_type: &str,
    source_id: String,
    data: serde_json::Value,
    now: DateTime<Utc>,
) -> ServiceResult<()> {
    let id = uuid::Uuid::new_v4();
    let payload = json!({
        "type": event_type,
        "id": format!("evt_{}", id.simple()),
        "timestamp": now.to_rfc3339_opts(SecondsFormat::Millis, true),
        "data": data,
    });
    tenant_store::events::ingest(
        conn,
        tenant_id,
        &NewEvent {
            id,
            source: source.into(),
            source_id,
            event_type: event_type.into(),
            payload: payload.to_string(),
        },
        None,
        now,
    )?;
    Ok(())
}
