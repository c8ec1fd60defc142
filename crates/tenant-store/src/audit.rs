//! The audit log: one row per mutation, written in the same transaction as the change.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use tenant_core::TenantId;
use uuid::Uuid;

use crate::schema::audit_log;
use crate::{AnyConnection, StoreResult};

/// Who did something and from where.
#[derive(Debug, Clone, Default)]
pub struct AuditContext {
    /// `operator`, `api_key`, `user`, `system`.
    pub actor_type: String,
    /// The actor's id, when it has one.
    pub actor_id: Option<String>,
    /// The request that made the change.
    pub request_id: Option<String>,
    /// The client's address.
    pub client_addr: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
}

/// What was done to which resource.
#[derive(Debug, Clone)]
pub struct AuditEvent<'a> {
    /// The tenant concerned, if any.
    pub tenant_id: Option<&'a TenantId>,
    /// A dotted verb, e.g. `tenant.created`, `channel.updated`.
    pub action: &'a str,
    /// `tenant`, `channel`, …
    pub resource_type: &'a str,
    /// The resource's id.
    pub resource_id: Option<String>,
    /// Non-secret details as JSON (e.g. which fields changed).
    pub details: Option<serde_json::Value>,
}

/// An `audit_log` row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    /// UUID text.
    pub id: String,
    /// The tenant concerned (not a foreign key: it outlives the tenant).
    pub tenant_id: Option<String>,
    /// Actor kind.
    pub actor_type: String,
    /// Actor id.
    pub actor_id: Option<String>,
    /// Action.
    pub action: String,
    /// Resource kind.
    pub resource_type: String,
    /// Resource id.
    pub resource_id: Option<String>,
    /// Request id.
    pub request_id: Option<String>,
    /// Client address.
    pub client_addr: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// Details JSON.
    pub details: Option<String>,
    /// When (UTC).
    pub created_at: NaiveDateTime,
}

/// Records one event.
pub fn record(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    event: AuditEvent<'_>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let row = AuditRow {
        id: Uuid::new_v4().to_string(),
        tenant_id: event.tenant_id.map(ToString::to_string),
        actor_type: ctx.actor_type.clone(),
        actor_id: ctx.actor_id.clone(),
        action: event.action.to_owned(),
        resource_type: event.resource_type.to_owned(),
        resource_id: event.resource_id,
        request_id: ctx.request_id.clone(),
        client_addr: ctx.client_addr.clone(),
        user_agent: ctx.user_agent.clone(),
        details: event.details.map(|d| d.to_string()),
        created_at: now.naive_utc(),
    };
    diesel::insert_into(audit_log::table)
        .values(&row)
        .execute(conn)?;
    Ok(())
}

/// The most recent events of a tenant, newest first.
pub fn list_for_tenant(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    limit: i64,
) -> StoreResult<Vec<AuditRow>> {
    Ok(audit_log::table
        .filter(audit_log::tenant_id.eq(tenant_id.to_string()))
        .order((audit_log::created_at.desc(), audit_log::id.desc()))
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)?)
}
