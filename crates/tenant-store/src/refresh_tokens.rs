//! Refresh tokens, stored only as SHA-256 hashes. The tokens of one login form a family: using a
//! token marks it used and issues its successor; presenting a used or revoked token again is
//! taken as theft and revokes the whole family.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::schema::refresh_tokens;
use crate::{AnyConnection, StoreResult};

/// Whose token it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenOwner {
    /// A tenant user, by id.
    TenantUser(Uuid),
    /// An operator user, by id.
    OperatorUser(Uuid),
}

/// A `refresh_tokens` row (the token's hash, never the token).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshTokenRow {
    /// UUID text.
    pub id: String,
    /// SHA-256 hex of the token.
    pub token_hash: String,
    /// The login this token descends from.
    pub family_id: String,
    /// Owner, when a tenant user.
    pub tenant_user_id: Option<String>,
    /// Owner, when an operator user.
    pub operator_user_id: Option<String>,
    /// Issued at (UTC).
    pub created_at: NaiveDateTime,
    /// Unusable after.
    pub expires_at: NaiveDateTime,
    /// When it was exchanged for its successor.
    pub used_at: Option<NaiveDateTime>,
    /// When its family was revoked.
    pub revoked_at: Option<NaiveDateTime>,
}

impl RefreshTokenRow {
    /// The owner, if the row names one by a valid UUID.
    pub fn owner(&self) -> Option<TokenOwner> {
        match (&self.tenant_user_id, &self.operator_user_id) {
            (Some(id), None) => id.parse().ok().map(TokenOwner::TenantUser),
            (None, Some(id)) => id.parse().ok().map(TokenOwner::OperatorUser),
            _ => None,
        }
    }
}

/// Stores a token hash in a family, expiring at `expires_at`.
pub fn insert(
    conn: &mut AnyConnection,
    owner: TokenOwner,
    family_id: &Uuid,
    token_hash: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> StoreResult<()> {
    let (tenant_user_id, operator_user_id) = match owner {
        TokenOwner::TenantUser(id) => (Some(id.to_string()), None),
        TokenOwner::OperatorUser(id) => (None, Some(id.to_string())),
    };
    let row = RefreshTokenRow {
        id: Uuid::new_v4().to_string(),
        token_hash: token_hash.to_owned(),
        family_id: family_id.to_string(),
        tenant_user_id,
        operator_user_id,
        created_at: now.naive_utc(),
        expires_at: expires_at.naive_utc(),
        used_at: None,
        revoked_at: None,
    };
    diesel::insert_into(refresh_tokens::table)
        .values(&row)
        .execute(conn)?;
    Ok(())
}

/// The token with this hash, if any.
pub fn find_by_hash(
    conn: &mut AnyConnection,
    token_hash: &str,
) -> StoreResult<Option<RefreshTokenRow>> {
    Ok(refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select(RefreshTokenRow::as_select())
        .first(conn)
        .optional()?)
}

/// Marks a token used, only if it is still unused and unrevoked; returns whether this call did
/// it (`false` means someone else used it first: a reuse).
pub fn mark_used(conn: &mut AnyConnection, id: &str, now: DateTime<Utc>) -> StoreResult<bool> {
    let n = diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::id.eq(id))
            .filter(refresh_tokens::used_at.is_null())
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::used_at.eq(Some(now.naive_utc())))
    .execute(conn)?;
    Ok(n == 1)
}

/// Revokes every token of a family; returns how many were still live.
pub fn revoke_family(
    conn: &mut AnyConnection,
    family_id: &str,
    now: DateTime<Utc>,
) -> StoreResult<usize> {
    Ok(diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(family_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(Some(now.naive_utc())))
    .execute(conn)?)
}

/// Revokes every token of an owner (after a password change or when access is withdrawn).
pub fn revoke_all_of(
    conn: &mut AnyConnection,
    owner: TokenOwner,
    now: DateTime<Utc>,
) -> StoreResult<usize> {
    let now = Some(now.naive_utc());
    let live = refresh_tokens::table.filter(refresh_tokens::revoked_at.is_null());
    let n = match owner {
        TokenOwner::TenantUser(id) => {
            diesel::update(live.filter(refresh_tokens::tenant_user_id.eq(id.to_string())))
                .set(refresh_tokens::revoked_at.eq(now))
                .execute(conn)?
        }
        TokenOwner::OperatorUser(id) => {
            diesel::update(live.filter(refresh_tokens::operator_user_id.eq(id.to_string())))
                .set(refresh_tokens::revoked_at.eq(now))
                .execute(conn)?
        }
    };
    Ok(n)
}

/// Deletes an owner's tokens that expired before `before` (housekeeping at login).
pub fn delete_expired_of(
    conn: &mut AnyConnection,
    owner: TokenOwner,
    before: DateTime<Utc>,
) -> StoreResult<usize> {
    let expired = refresh_tokens::table.filter(refresh_tokens::expires_at.lt(before.naive_utc()));
    let n = match owner {
        TokenOwner::TenantUser(id) => {
            diesel::delete(expired.filter(refresh_tokens::tenant_user_id.eq(id.to_string())))
                .execute(conn)?
        }
        TokenOwner::OperatorUser(id) => {
            diesel::delete(expired.filter(refresh_tokens::operator_user_id.eq(id.to_string())))
                .execute(conn)?
        }
    };
    Ok(n)
}
