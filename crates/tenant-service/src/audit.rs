//! The audit log: what an entry about a tenant's resource looks like, which fields a change
//! touched (names only, never values), and reading the log (a tenant's, or everyone's).

use tenant_core::{Page, PageRequest, TenantId};
use tenant_store::AnyConnection;
use tenant_store::audit::{self, AuditEvent, AuditFilter, AuditRow};

use crate::error::ServiceResult;

/// A page of the audit log, newest first: one tenant's entries (also after the tenant was
/// deleted: the log outlives it), or with `None` everyone's and those of no tenant.
pub fn page(
    conn: &mut AnyConnection,
    tenant_id: Option<&TenantId>,
    filter: &AuditFilter,
    page: &PageRequest,
) -> ServiceResult<Page<AuditRow>> {
    Ok(match tenant_id {
        Some(t) => audit::page_for_tenant(conn, t, filter, page)?,
        None => audit::page_all(conn, filter, page)?,
    })
}

/// The names of the fields a change sets.
pub fn changed_fields(fields: &[(&'static str, bool)]) -> Vec<&'static str> {
    fields
        .iter()
        .filter(|(_, set)| *set)
        .map(|(name, _)| *name)
        .collect()
}

/// An audit entry about a tenant's resource.
pub fn event<'a>(
    tenant_id: &'a TenantId,
    action: &'a str,
    resource_type: &'a str,
    resource_id: String,
    details: Option<serde_json::Value>,
) -> AuditEvent<'a> {
    AuditEvent {
        tenant_id: Some(tenant_id),
        action,
        resource_type,
        resource_id: Some(resource_id),
        details,
    }
}
