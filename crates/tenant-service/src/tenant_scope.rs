//! Tenant scoping of reads: a tenant's resources are listed only once the tenant is known to
//! exist, so a missing tenant (or, behind the access policy, another tenant's id) answers
//! `NotFound("tenant")` rather than an empty list.

use tenant_core::TenantId;
use tenant_store::{AnyConnection, tenants};

use crate::error::{ServiceError, ServiceResult};

/// The tenant named by a request exists; else `NotFound("tenant")` (reads of a tenant's
/// resources answer so rather than an empty list).
pub fn require_tenant(conn: &mut AnyConnection, id: &TenantId) -> ServiceResult<()> {
    if tenants::exists(conn, id)? {
        Ok(())
    } else {
        Err(ServiceError::NotFound("tenant"))
    }
}
