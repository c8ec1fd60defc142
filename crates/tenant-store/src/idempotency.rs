//! Idempotency keys: the stored answer of each creating request a caller sent with an
//! `Idempotency-Key`, written in the transaction of what the request created (the rules are the
//! service's: `tenant_service::idempotency`).
//!
//! A key is scoped by its caller, the method and the path (the primary key); a second row for the
//! same scope is a unique violation, which [`insert`] reports as `Ok(false)` so that the caller
//! rolls its effect back (a concurrent request with the same key, in another process, committed
//! first). Expired rows are the caller's to ignore (and to delete with [`delete_if_expired`] before
//! using the key again); [`delete_expired`] purges them.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::error::unique_violation;
use crate::schema::idempotency_keys;
use crate::{AnyConnection, StoreResult};

/// Who used a key, and where: the scope of a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyScope {
    /// The caller: principal kind and id, `kind:id`.
    pub caller: String,
    /// The request's method.
    pub method: String,
    /// The request's path.
    pub path: String,
    /// The key as the caller sent it.
    pub key: String,
}

/// An `idempotency_keys` row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = idempotency_keys)]
pub struct IdempotencyRow {
    /// `kind:id` of the caller's principal.
    pub caller: String,
    /// The request's method.
    pub method: String,
    /// The request's path.
    pub path: String,
    /// The `Idempotency-Key` sent.
    pub idem_key: String,
    /// SHA-256 of the request body, hex.
    pub fingerprint: String,
    /// The answer's status code.
    pub status_code: i32,
    /// The answer's `Location`, if it had one.
    pub location: Option<String>,
    /// The answer's body: JSON text, or its sealed envelope when `sealed`.
    pub body: String,
    /// Whether `body` is sealed with the key ring.
    pub sealed: bool,
    /// When the request was answered.
    pub created_at: NaiveDateTime,
    /// When the key is forgotten.
    pub expires_at: NaiveDateTime,
}

impl IdempotencyRow {
    /// The row's scope.
    pub fn scope(&self) -> KeyScope {
        KeyScope {
            caller: self.caller.clone(),
            method: self.method.clone(),
            path: self.path.clone(),
            key: self.idem_key.clone(),
        }
    }
}

/// The row of a key, if any, expired or not (the caller compares `expires_at`).
pub fn find(conn: &mut AnyConnection, scope: &KeyScope) -> StoreResult<Option<IdempotencyRow>> {
    let query = idempotency_keys::table
        .filter(idempotency_keys::caller.eq(&scope.caller))
        .filter(idempotency_keys::method.eq(&scope.method))
        .filter(idempotency_keys::path.eq(&scope.path))
        .filter(idempotency_keys::idem_key.eq(&scope.key))
        .select(IdempotencyRow::as_select());
    Ok(query.first(conn).optional()?)
}

/// Deletes the row of a key if it expired (so that the key can be used again before the purge
/// comes by); returns whether one was deleted.
pub fn delete_if_expired(
    conn: &mut AnyConnection,
    scope: &KeyScope,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    Ok(diesel::delete(
        idempotency_keys::table
            .filter(idempotency_keys::caller.eq(&scope.caller))
            .filter(idempotency_keys::method.eq(&scope.method))
            .filter(idempotency_keys::path.eq(&scope.path))
            .filter(idempotency_keys::idem_key.eq(&scope.key))
            .filter(idempotency_keys::expires_at.le(now.naive_utc())),
    )
    .execute(conn)?
        > 0)
}

/// Inserts a key's row; `Ok(false)` if the key is taken (by a request that committed first, or
/// is committing: PostgreSQL waits for it). On PostgreSQL a taken key aborts the transaction:
/// the caller must roll back.
pub fn insert(conn: &mut AnyConnection, row: &IdempotencyRow) -> StoreResult<bool> {
    match diesel::insert_into(idempotency_keys::table)
        .values(row)
        .execute(conn)
    {
        Ok(_) => Ok(true),
        Err(e) if unique_violation(&e).is_some() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Deletes every row expired at `now` (housekeeping); returns how many.
pub fn delete_expired(conn: &mut AnyConnection, now: DateTime<Utc>) -> StoreResult<usize> {
    Ok(diesel::delete(
        idempotency_keys::table.filter(idempotency_keys::expires_at.le(now.naive_utc())),
    )
    .execute(conn)?)
}
