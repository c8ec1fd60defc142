//! The audit entries the use cases write: what an entry about a tenant's resource looks like,
//! and which fields a change touched (names only, never values).

use tenant_core::TenantId;
use tenant_store::audit::AuditEvent;

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
