//! Events the gateway reports and the sessions they name: checking an event before it is
//! queued for the ingest write path (group commit, see [`crate::group_commit::write_paths`]),
//! and reading a tenant's sessions.

use tenant_core::{Page, PageRequest, TenantId};
use tenant_store::AnyConnection;
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
