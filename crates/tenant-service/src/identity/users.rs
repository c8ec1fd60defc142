//! Managing a tenant's users and the operator users: create (with a password or an invite),
//! list, change role or disable, delete, with their rules (email, role, password). A tenant
//! always keeps at least one enabled owner.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use tenant_core::{
    Email, Page, PageRequest, Role, Secret, TenantId, ValidationError, ValidationErrors,
};
use tenant_store::audit::{self, AuditContext, AuditEvent};
use tenant_store::operator_users::{self, OperatorUserRow};
use tenant_store::refresh_tokens::{self, TokenOwner};
use tenant_store::users::{self, NewTenantUser, TenantUserRow};
use tenant_store::{AnyConnection, StoreError, StoreResult, write_transaction};
use uuid::Uuid;

use super::password;
use crate::error::{ServiceError, ServiceResult};
use crate::tenant_scope::require_tenant;
use crate::tokens::{generate_token, hash_token_hex};

/// The prefix of invite tokens.
pub const INVITE_PREFIX: &str = "msinv_";
/// How long an invite stays valid.
pub const INVITE_TTL_DAYS: i64 = 7;

/// A user to create: with a password (already hashed) or, without, an invite.
#[derive(Debug)]
pub struct CreateUser {
    /// Email.
    pub email: Email,
    /// Role.
    pub role: Role,
    /// argon2id hash of the initial password, if given.
    pub password_hash: Option<String>,
}

/// A user as asked for: checked by [`NewUser::check`], hashed by [`CheckedUser::hash`].
#[derive(Debug)]
pub struct NewUser {
    /// Email, unique within the tenant.
    pub email: String,
    /// `owner`, `admin` or `member`.
    pub role: String,
    /// Initial password; without one an invite is made.
    pub password: Option<Secret>,
}

/// A user whose fields follow the rules, password not hashed yet.
#[derive(Debug)]
pub struct CheckedUser {
    email: Email,
    role: Role,
    password: Option<Secret>,
}

impl NewUser {
    /// Checks every field (a valid email, a known role, a password of 12 characters to 1024
    /// bytes), reporting every field at fault at once.
    pub fn check(self) -> ServiceResult<CheckedUser> {
        let mut errors = ValidationErrors::default();
        let email = errors.check(Email::parse(&self.email));
        let role = errors.check(parse_role(&self.role));
        if let Some(p) = &self.password {
            errors.check(password::validate_new("password", p));
        }
        let (Some(email), Some(role), true) = (email, role, errors.0.is_empty()) else {
            return Err(errors.into());
        };
        Ok(CheckedUser {
            email,
            role,
            password: self.password,
        })
    }
}

impl CheckedUser {
    /// The user to create, its password hashed (argon2id: tens of milliseconds of CPU, so on a
    /// blocking thread).
    pub fn hash(self) -> ServiceResult<CreateUser> {
        let password_hash = self
            .password
            .as_ref()
            .map(password::hash)
            .transpose()
            .map_err(ServiceError::Internal)?;
        Ok(CreateUser {
            email: self.email,
            role: self.role,
            password_hash,
        })
    }
}

/// A role as a tenant user's: `owner`, `admin` or `member`.
pub fn parse_role(raw: &str) -> Result<Role, ValidationError> {
    raw.parse().map_err(|_| {
        ValidationError::new("role", "invalid_value", "must be owner, admin or member")
    })
}

/// An operator user as asked for.
#[derive(Debug)]
pub struct NewOperator {
    /// Email, unique among operators.
    pub email: String,
    /// Password: 12 characters to 1024 bytes.
    pub password: Secret,
}

/// An operator whose fields follow the rules, password not hashed yet.
#[derive(Debug)]
pub struct CheckedOperator {
    email: Email,
    password: Secret,
}

impl NewOperator {
    /// Checks the email and the password, reporting both at once.
    pub fn check(self) -> ServiceResult<CheckedOperator> {
        let mut errors = ValidationErrors::default();
        let email = errors.check(Email::parse(&self.email));
        errors.check(password::validate_new("password", &self.password));
        let (Some(email), true) = (email, errors.0.is_empty()) else {
            return Err(errors.into());
        };
        Ok(CheckedOperator {
            email,
            password: self.password,
        })
    }
}

/// A tenant's users in creation order (`NotFound("tenant")` for a missing tenant).
pub fn list_users(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    page: &PageRequest,
) -> ServiceResult<Page<TenantUserRow>> {
    require_tenant(conn, tenant_id)?;
    Ok(users::list(conn, tenant_id, page)?)
}

/// One of a tenant's users.
pub fn find_user(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    id: &Uuid,
) -> StoreResult<TenantUserRow> {
    users::find(conn, tenant_id, id)
}

/// Every operator user, oldest first.
pub fn list_operators(conn: &mut AnyConnection) -> StoreResult<Vec<OperatorUserRow>> {
    operator_users::list(conn)
}

/// Creates an operator user from a checked request, hashing its password (argon2id: on a
/// blocking thread).
pub fn create_checked_operator(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    operator: CheckedOperator,
    now: DateTime<Utc>,
) -> ServiceResult<OperatorUserRow> {
    let hash = password::hash(&operator.password).map_err(ServiceError::Internal)?;
    Ok(create_operator(conn, ctx, &operator.email, &hash, now)?)
}

fn last_owner_conflict() -> StoreError {
    StoreError::Conflict {
        field: "role",
        message: "a tenant keeps at least one enabled owner".into(),
    }
}

/// Creates a user; returns the row and, when no password was given, the invite token (shown
/// once).
pub fn create_user(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    tenant_id: &TenantId,
    new: CreateUser,
    now: DateTime<Utc>,
) -> StoreResult<(TenantUserRow, Option<Secret>)> {
    let invite = new
        .password_hash
        .is_none()
        .then(|| generate_token(INVITE_PREFIX));
    write_transaction(conn, |c| {
        if !users::tenant_exists(c, tenant_id)? {
            return Err(StoreError::NotFound("tenant"));
        }
        let row = users::insert(
            c,
            tenant_id,
            NewTenantUser {
                email: &new.email,
                role: new.role,
                password_hash: new.password_hash,
                invite: invite.as_ref().map(|t| {
                    (
                        hash_token_hex(t.expose()),
                        now + Duration::days(INVITE_TTL_DAYS),
                    )
                }),
            },
            now,
        )?;
        audit::record(
            c,
            ctx,
            AuditEvent {
                tenant_id: Some(tenant_id),
                action: "user.created",
                resource_type: "user",
                resource_id: Some(row.id.clone()),
                details: Some(json!({ "role": new.role.as_str(), "invited": invite.is_some() })),
            },
            now,
        )?;
        Ok((row, invite))
    })
}

/// Changes a user's role and/or disabled flag, refusing to leave the tenant without an enabled
/// owner (409). Disabling a user revokes its sessions.
pub fn update_user(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    tenant_id: &TenantId,
    id: &Uuid,
    role: Option<Role>,
    disabled: Option<bool>,
    now: DateTime<Utc>,
) -> StoreResult<TenantUserRow> {
    write_transaction(conn, |c| {
        users::lock_tenant(c, tenant_id)?;
        let before = users::find(c, tenant_id, id)?;
        let old_role = before.role()?;
        let new_role = role.unwrap_or(old_role);
        let new_disabled = disabled.unwrap_or(before.disabled);
        let was_owner = old_role == Role::Owner && !before.disabled;
        let is_owner = new_role == Role::Owner && !new_disabled;
        if was_owner && !is_owner && users::count_enabled_owners(c, tenant_id)? <= 1 {
            return Err(last_owner_conflict());
        }
        users::update_access(c, tenant_id, id, new_role, new_disabled, now)?;
        if new_disabled && !before.disabled {
            refresh_tokens::revoke_all_of(c, TokenOwner::TenantUser(*id), now)?;
        }
        audit::record(
            c,
            ctx,
            AuditEvent {
                tenant_id: Some(tenant_id),
                action: "user.updated",
                resource_type: "user",
                resource_id: Some(id.to_string()),
                details: Some(json!({
                    "role": { "from": old_role.as_str(), "to": new_role.as_str() },
                    "disabled": new_disabled,
                })),
            },
            now,
        )?;
        users::find(c, tenant_id, id)
    })
}

/// Deletes a user (and its sessions), refusing to delete the last enabled owner (409).
pub fn delete_user(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    tenant_id: &TenantId,
    id: &Uuid,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    write_transaction(conn, |c| {
        users::lock_tenant(c, tenant_id)?;
        let user = users::find(c, tenant_id, id)?;
        let is_owner = user.role()? == Role::Owner && !user.disabled;
        if is_owner && users::count_enabled_owners(c, tenant_id)? <= 1 {
            return Err(last_owner_conflict());
        }
        users::delete(c, tenant_id, id)?;
        audit::record(
            c,
            ctx,
            AuditEvent {
                tenant_id: Some(tenant_id),
                action: "user.deleted",
                resource_type: "user",
                resource_id: Some(id.to_string()),
                details: None,
            },
            now,
        )?;
        Ok(())
    })
}

/// Creates an operator user with a password (already hashed).
pub fn create_operator(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    email: &Email,
    password_hash: &str,
    now: DateTime<Utc>,
) -> StoreResult<OperatorUserRow> {
    write_transaction(conn, |c| {
        let row = operator_users::insert(c, email, password_hash, now)?;
        audit::record(
            c,
            ctx,
            AuditEvent {
                tenant_id: None,
                action: "operator.created",
                resource_type: "operator",
                resource_id: Some(row.id.clone()),
                details: None,
            },
            now,
        )?;
        Ok(row)
    })
}
