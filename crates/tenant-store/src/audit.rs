//! The audit log: one row per mutation, written in the same transaction as the change.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use tenant_core::{Page, PageRequest, TenantId};
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
    insert_row(conn, &row(ctx, event, now))
}

/// Stores a row made by [`row`].
pub fn insert_row(conn: &mut AnyConnection, row: &AuditRow) -> StoreResult<()> {
    diesel::insert_into(audit_log::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Stores rows made by [`row`], many at once: one statement per 1,000 rows on PostgreSQL, one a
/// row on SQLite (in process).
pub fn insert_rows(conn: &mut AnyConnection, rows: &[AuditRow]) -> StoreResult<()> {
    match conn {
        AnyConnection::Postgresql(pg) => {
            // 12 bound values a row: well under PostgreSQL's 65,535.
            for chunk in rows.chunks(1_000) {
                diesel::insert_into(audit_log::table)
                    .values(chunk)
                    .execute(pg)?;
            }
        }
        AnyConnection::Sqlite(_) => {
            for row in rows {
                insert_row(conn, row)?;
            }
        }
    }
    Ok(())
}

/// The row [`record`] writes, for callers that insert it with others (batched creates).
pub fn row(ctx: &AuditContext, event: AuditEvent<'_>, now: DateTime<Utc>) -> AuditRow {
    AuditRow {
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
    }
}

/// Which events a listing returns; every set field must match.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Exact action, e.g. `key.rotated`.
    pub action: Option<String>,
    /// Exact actor kind.
    pub actor_type: Option<String>,
    /// Exact actor id.
    pub actor_id: Option<String>,
    /// Exact resource kind.
    pub resource_type: Option<String>,
    /// Exact resource id.
    pub resource_id: Option<String>,
    /// At or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Before this time.
    pub until: Option<DateTime<Utc>>,
}

/// A page of one tenant's events, newest first.
pub fn page_for_tenant(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    filter: &AuditFilter,
    page: &PageRequest,
) -> StoreResult<Page<AuditRow>> {
    list_where(conn, Some(tenant_id), filter, page)
}

/// A page of every tenant's events (and those of no tenant), newest first: for operators.
pub fn page_all(
    conn: &mut AnyConnection,
    filter: &AuditFilter,
    page: &PageRequest,
) -> StoreResult<Page<AuditRow>> {
    list_where(conn, None, filter, page)
}

fn list_where(
    conn: &mut AnyConnection,
    tenant_id: Option<&TenantId>,
    filter: &AuditFilter,
    page: &PageRequest,
) -> StoreResult<Page<AuditRow>> {
    let mut query = audit_log::table
        .select(AuditRow::as_select())
        .order((audit_log::created_at.desc(), audit_log::id.desc()))
        .limit(i64::from(page.limit) + 1)
        .into_boxed();
    if let Some(t) = tenant_id {
        query = query.filter(audit_log::tenant_id.eq(t.to_string()));
    }
    if let Some(v) = &filter.action {
        query = query.filter(audit_log::action.eq(v.clone()));
    }
    if let Some(v) = &filter.actor_type {
        query = query.filter(audit_log::actor_type.eq(v.clone()));
    }
    if let Some(v) = &filter.actor_id {
        query = query.filter(audit_log::actor_id.eq(v.clone()));
    }
    if let Some(v) = &filter.resource_type {
        query = query.filter(audit_log::resource_type.eq(v.clone()));
    }
    if let Some(v) = &filter.resource_id {
        query = query.filter(audit_log::resource_id.eq(v.clone()));
    }
    if let Some(v) = filter.since {
        query = query.filter(audit_log::created_at.ge(v.naive_utc()));
    }
    if let Some(v) = filter.until {
        query = query.filter(audit_log::created_at.lt(v.naive_utc()));
    }
    if let Some(after) = page.after {
        let at = after.created_at.naive_utc();
        let id = after.id.hyphenated().to_string();
        query = query.filter(
            audit_log::created_at
                .lt(at)
                .or(audit_log::created_at.eq(at).and(audit_log::id.lt(id))),
        );
    }
    let rows: Vec<_> = query.load(conn)?;
    Page::from_overfetch(rows, page.limit, |last| {
        crate::paging::cursor_of("audit_log", last.created_at, &last.id)
    })
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
