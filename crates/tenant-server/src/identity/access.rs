//! Who may manage users and operators, and an interim guard on where a user's token reaches.
//!
//! The checks are small functions so the permission matrix (`docs/security.md`) can absorb them:
//! owners (and operators) manage a tenant's users; anyone of the tenant may read them; only
//! operators manage operators. A principal of another tenant gets 404, as if the tenant did not
//! exist.

use actix_web::http::Method;
use tenant_core::{Role, TenantId};

use crate::error::ApiError;
use crate::principal::Principal;

/// May `principal` read the users of `tenant_id`?
pub fn may_read_users(principal: &Principal, tenant_id: &TenantId) -> Result<(), ApiError> {
    match principal {
        Principal::Operator { .. } => Ok(()),
        Principal::Tenant { tenant_id: own, .. } if own == tenant_id => Ok(()),
        Principal::Tenant { .. } => Err(ApiError::NotFound("tenant")),
        Principal::Gateway { .. } => Err(ApiError::Forbidden),
    }
}

/// May `principal` create, change or delete users of `tenant_id`? Owners and operators.
pub fn may_manage_users(principal: &Principal, tenant_id: &TenantId) -> Result<(), ApiError> {
    may_read_users(principal, tenant_id)?;
    match principal {
        Principal::Tenant { role, .. } if *role != Role::Owner => Err(ApiError::Forbidden),
        _ => Ok(()),
    }
}

/// May `principal` manage operator users? Operators only.
pub fn may_manage_operators(principal: &Principal) -> Result<(), ApiError> {
    match principal {
        Principal::Operator { .. } => Ok(()),
        _ => Err(ApiError::Forbidden),
    }
}

/// Where a tenant principal authenticated by a JWT may go, until the full permission matrix
/// takes over: `/auth/*` always; under `/tenants/{its id}` reads for members and anything but
/// deleting the tenant for admins and owners; another tenant's paths answer 404; everything else
/// (operator routes, the combined config) 403.
pub fn tenant_path_guard(
    principal: &Principal,
    method: &Method,
    path: &str,
) -> Result<(), ApiError> {
    let Principal::Tenant {
        tenant_id, role, ..
    } = principal
    else {
        return Ok(());
    };
    if path.starts_with("/auth/") {
        return Ok(());
    }
    let Some(rest) = path.strip_prefix("/tenants/") else {
        return Err(ApiError::Forbidden);
    };
    let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
    if id != tenant_id.to_string() {
        return Err(ApiError::NotFound("tenant"));
    }
    if *role == Role::Member && method != Method::GET {
        return Err(ApiError::Forbidden);
    }
    if tail.is_empty() && method == Method::DELETE {
        return Err(ApiError::Forbidden);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::ActorRef;

    fn user(tenant_id: TenantId, role: Role) -> Principal {
        Principal::Tenant {
            tenant_id,
            role,
            actor: ActorRef::User(uuid::Uuid::new_v4()),
        }
    }

    #[test]
    fn owners_manage_members_read_strangers_see_nothing() {
        let t = TenantId::random();
        let other = TenantId::random();
        assert!(may_manage_users(&user(t, Role::Owner), &t).is_ok());
        assert!(matches!(
            may_manage_users(&user(t, Role::Admin), &t),
            Err(ApiError::Forbidden)
        ));
        assert!(may_read_users(&user(t, Role::Member), &t).is_ok());
        assert!(matches!(
            may_read_users(&user(other, Role::Owner), &t),
            Err(ApiError::NotFound(_))
        ));
    }

    #[test]
    fn path_guard() {
        let t = TenantId::random();
        let p = user(t, Role::Member);
        let own = format!("/tenants/{t}/channels");
        assert!(tenant_path_guard(&p, &Method::GET, &own).is_ok());
        assert!(tenant_path_guard(&p, &Method::POST, &own).is_err());
        assert!(tenant_path_guard(&p, &Method::POST, "/auth/logout").is_ok());
        let other = format!("/tenants/{}/channels", TenantId::random());
        assert!(matches!(
            tenant_path_guard(&p, &Method::GET, &other),
            Err(ApiError::NotFound(_))
        ));
        assert!(matches!(
            tenant_path_guard(&p, &Method::GET, "/tenants"),
            Err(ApiError::Forbidden)
        ));
        let owner = user(t, Role::Owner);
        assert!(tenant_path_guard(&owner, &Method::DELETE, &format!("/tenants/{t}")).is_err());
        assert!(tenant_path_guard(&owner, &Method::PATCH, &format!("/tenants/{t}")).is_ok());
    }
}
