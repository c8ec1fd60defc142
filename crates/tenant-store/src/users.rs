//! Tenant users: people acting for one tenant with a role, an argon2id password hash (or a
//! pending invite), and login bookkeeping. Every function takes the tenant id first, except the
//! lookups by invite hash, which is how an invited person is found before they belong anywhere.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use tenant_core::{Email, Page, PageRequest, Role, TenantId};
use uuid::Uuid;

use crate::error::unique_violation;
use crate::schema::{tenant_users, tenants};
use crate::{AnyConnection, StoreError, StoreResult};

/// A `tenant_users` row. `Debug` leaves out the password and invite hashes.
#[derive(Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = tenant_users)]
pub struct TenantUserRow {
    /// UUID text.
    pub id: String,
    /// The tenant.
    pub tenant_id: String,
    /// Normalised email.
    pub email: String,
    /// argon2id PHC string; `None` while an invite is pending.
    pub password_hash: Option<String>,
    /// `owner`, `admin` or `member`.
    pub role: String,
    /// Creation time (UTC).
    pub created_at: NaiveDateTime,
    /// Last change (UTC).
    pub updated_at: NaiveDateTime,
    /// A disabled user cannot log in or refresh.
    pub disabled: bool,
    /// Last successful login.
    pub last_login_at: Option<NaiveDateTime>,
    /// When the password was last set.
    pub password_changed_at: Option<NaiveDateTime>,
    /// SHA-256 hex of a pending invite token.
    pub invite_hash: Option<String>,
    /// When the pending invite expires.
    pub invite_expires_at: Option<NaiveDateTime>,
}

impl std::fmt::Debug for TenantUserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantUserRow")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("role", &self.role)
            .field("disabled", &self.disabled)
            .field("has_password", &self.password_hash.is_some())
            .field("invite_pending", &self.invite_hash.is_some())
            .finish_non_exhaustive()
    }
}

impl TenantUserRow {
    /// The role, or `Corrupt` when the stored value is unknown.
    pub fn role(&self) -> StoreResult<Role> {
        self.role.parse().map_err(|_| StoreError::Corrupt {
            table: "tenant_users",
            id: self.id.clone(),
            reason: "unknown role".into(),
        })
    }

    /// The id as a UUID, or `Corrupt`.
    pub fn uuid(&self) -> StoreResult<Uuid> {
        self.id.parse().map_err(|_| StoreError::Corrupt {
            table: "tenant_users",
            id: self.id.clone(),
            reason: "id is not a UUID".into(),
        })
    }

    /// When it was created, in UTC.
    pub fn created_at_utc(&self) -> DateTime<Utc> {
        self.created_at.and_utc()
    }
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewTenantUser<'a> {
    /// The user's email.
    pub email: &'a Email,
    /// The role.
    pub role: Role,
    /// argon2id hash of the initial password, if one was given.
    pub password_hash: Option<String>,
    /// SHA-256 hex of an invite token, when no password was given, with its expiry.
    pub invite: Option<(String, DateTime<Utc>)>,
}

/// Creates a user; `Conflict` on `email` when the tenant already has one with that address.
pub fn insert(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    new: NewTenantUser<'_>,
    now: DateTime<Utc>,
) -> StoreResult<TenantUserRow> {
    let now = now.naive_utc();
    let row = TenantUserRow {
        id: Uuid::new_v4().to_string(),
        tenant_id: tenant_id.to_string(),
        email: new.email.as_str().to_owned(),
        password_changed_at: new.password_hash.as_ref().map(|_| now),
        password_hash: new.password_hash,
        role: new.role.as_str().to_owned(),
        created_at: now,
        updated_at: now,
        disabled: false,
        last_login_at: None,
        invite_hash: new.invite.as_ref().map(|(h, _)| h.clone()),
        invite_expires_at: new.invite.map(|(_, at)| at.naive_utc()),
    };
    match diesel::insert_into(tenant_users::table)
        .values(&row)
        .execute(conn)
    {
        Ok(_) => Ok(row),
        Err(e) if unique_violation(&e).is_some() => Err(StoreError::Conflict {
            field: "email",
            message: "the tenant already has a user with this email".into(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// One user of a tenant; `NotFound` when it does not exist there.
pub fn find(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    id: &Uuid,
) -> StoreResult<TenantUserRow> {
    tenant_users::table
        .filter(tenant_users::tenant_id.eq(tenant_id.to_string()))
        .filter(tenant_users::id.eq(id.to_string()))
        .select(TenantUserRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound("user"))
}

/// The user with this email in a tenant, if any.
pub fn find_by_email(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    email: &Email,
) -> StoreResult<Option<TenantUserRow>> {
    Ok(tenant_users::table
        .filter(tenant_users::tenant_id.eq(tenant_id.to_string()))
        .filter(tenant_users::email.eq(email.as_str()))
        .select(TenantUserRow::as_select())
        .first(conn)
        .optional()?)
}

/// The user holding a pending invite with this hash, if any (expired or not).
pub fn find_by_invite_hash(
    conn: &mut AnyConnection,
    invite_hash: &str,
) -> StoreResult<Option<TenantUserRow>> {
    Ok(tenant_users::table
        .filter(tenant_users::invite_hash.eq(invite_hash))
        .select(TenantUserRow::as_select())
        .first(conn)
        .optional()?)
}

/// The id of the tenant with this slug, if any.
pub fn tenant_id_by_slug(conn: &mut AnyConnection, slug: &str) -> StoreResult<Option<TenantId>> {
    let id: Option<String> = tenants::table
        .filter(tenants::slug.eq(slug))
        .filter(tenants::deleted_at.is_null())
        .select(tenants::id)
        .first(conn)
        .optional()?;
    id.map(crate::tenants::stored_id).transpose()
}

/// Whether a tenant with this id exists.
pub fn tenant_exists(conn: &mut AnyConnection, tenant_id: &TenantId) -> StoreResult<bool> {
    let n: i64 = tenants::table
        .filter(tenants::id.eq(tenant_id.to_string()))
        .filter(tenants::deleted_at.is_null())
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// A tenant's users in creation order, a page at a time.
pub fn list(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    page: &PageRequest,
) -> StoreResult<Page<TenantUserRow>> {
    let mut query = tenant_users::table
        .filter(tenant_users::tenant_id.eq(tenant_id.to_string()))
        .select(TenantUserRow::as_select())
        .order((tenant_users::created_at.asc(), tenant_users::id.asc()))
        .limit(i64::from(page.limit) + 1)
        .into_boxed();
    if let Some(after) = page.after {
        let at = after.created_at.naive_utc();
        let id = after.id.hyphenated().to_string();
        query = query.filter(
            tenant_users::created_at
                .gt(at)
                .or(tenant_users::created_at.eq(at).and(tenant_users::id.gt(id))),
        );
    }
    let rows = query.load::<TenantUserRow>(conn)?;
    Page::from_overfetch(rows, page.limit, |last| {
        crate::paging::cursor_of("tenant_users", last.created_at, &last.id)
    })
}

/// Takes a write lock on the tenant's row for the rest of the transaction, so concurrent changes
/// to its owners are serialised (PostgreSQL row lock; SQLite has one writer anyway).
pub fn lock_tenant(conn: &mut AnyConnection, tenant_id: &TenantId) -> StoreResult<()> {
    let n = diesel::update(
        tenants::table
            .filter(tenants::id.eq(tenant_id.to_string()))
            .filter(tenants::deleted_at.is_null()),
    )
    .set(tenants::updated_at.eq(tenants::updated_at))
    .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound("tenant"));
    }
    Ok(())
}

/// How many enabled owners a tenant has.
pub fn count_enabled_owners(conn: &mut AnyConnection, tenant_id: &TenantId) -> StoreResult<i64> {
    Ok(tenant_users::table
        .filter(tenant_users::tenant_id.eq(tenant_id.to_string()))
        .filter(tenant_users::role.eq(Role::Owner.as_str()))
        .filter(tenant_users::disabled.eq(false))
        .count()
        .get_result(conn)?)
}

/// Sets a user's role and disabled flag.
pub fn update_access(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    id: &Uuid,
    role: Role,
    disabled: bool,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let n = diesel::update(
        tenant_users::table
            .filter(tenant_users::tenant_id.eq(tenant_id.to_string()))
            .filter(tenant_users::id.eq(id.to_string())),
    )
    .set((
        tenant_users::role.eq(role.as_str()),
        tenant_users::disabled.eq(disabled),
        tenant_users::updated_at.eq(now.naive_utc()),
    ))
    .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound("user"));
    }
    Ok(())
}

/// Sets a user's password hash and clears any pending invite.
pub fn set_password(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    id: &Uuid,
    password_hash: &str,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let now = now.naive_utc();
    let n = diesel::update(
        tenant_users::table
            .filter(tenant_users::tenant_id.eq(tenant_id.to_string()))
            .filter(tenant_users::id.eq(id.to_string())),
    )
    .set((
        tenant_users::password_hash.eq(Some(password_hash)),
        tenant_users::password_changed_at.eq(Some(now)),
        tenant_users::invite_hash.eq(None::<String>),
        tenant_users::invite_expires_at.eq(None::<NaiveDateTime>),
        tenant_users::updated_at.eq(now),
    ))
    .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound("user"));
    }
    Ok(())
}

/// Records a successful login.
pub fn touch_login(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    id: &Uuid,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    diesel::update(
        tenant_users::table
            .filter(tenant_users::tenant_id.eq(tenant_id.to_string()))
            .filter(tenant_users::id.eq(id.to_string())),
    )
    .set(tenant_users::last_login_at.eq(Some(now.naive_utc())))
    .execute(conn)?;
    Ok(())
}

/// Deletes a user (its refresh tokens go with it); `NotFound` when it does not exist there.
pub fn delete(conn: &mut AnyConnection, tenant_id: &TenantId, id: &Uuid) -> StoreResult<()> {
    let n = diesel::delete(
        tenant_users::table
            .filter(tenant_users::tenant_id.eq(tenant_id.to_string()))
            .filter(tenant_users::id.eq(id.to_string())),
    )
    .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound("user"));
    }
    Ok(())
}

/// The user with this id in whichever tenant, for authentication only: a refresh token names its
/// user but not the tenant. Nothing reached through a tenant may use this.
pub fn find_for_auth(conn: &mut AnyConnection, id: &Uuid) -> StoreResult<Option<TenantUserRow>> {
    Ok(tenant_users::table
        .filter(tenant_users::id.eq(id.to_string()))
        .select(TenantUserRow::as_select())
        .first(conn)
        .optional()?)
}
