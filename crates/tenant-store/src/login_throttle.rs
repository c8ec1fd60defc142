//! Failed-login counters shared by every replica: one row per throttle key (an account hash or a
//! client address). The policy (how many failures, how long a lock) belongs to the caller.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::error::unique_violation;
use crate::schema::login_throttle;
use crate::{AnyConnection, StoreResult};

/// A `login_throttle` row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = login_throttle)]
pub struct ThrottleRow {
    /// `acct:<hash>` or `addr:<ip>`.
    pub throttle_key: String,
    /// Consecutive failures counted so far.
    pub failures: i32,
    /// No attempt is evaluated before this.
    pub locked_until: Option<NaiveDateTime>,
    /// Last failure.
    pub updated_at: NaiveDateTime,
}

/// The counter of a key, if any.
pub fn get(conn: &mut AnyConnection, key: &str) -> StoreResult<Option<ThrottleRow>> {
    Ok(login_throttle::table
        .filter(login_throttle::throttle_key.eq(key))
        .select(ThrottleRow::as_select())
        .first(conn)
        .optional()?)
}

/// Writes a key's counter (insert or replace).
pub fn put(conn: &mut AnyConnection, row: &ThrottleRow) -> StoreResult<()> {
    let updated = diesel::update(
        login_throttle::table.filter(login_throttle::throttle_key.eq(&row.throttle_key)),
    )
    .set((
        login_throttle::failures.eq(row.failures),
        login_throttle::locked_until.eq(row.locked_until),
        login_throttle::updated_at.eq(row.updated_at),
    ))
    .execute(conn)?;
    if updated == 0 {
        match diesel::insert_into(login_throttle::table)
            .values(row)
            .execute(conn)
        {
            Ok(_) => {}
            // A concurrent failure created it first; its count is as good as ours.
            Err(e) if unique_violation(&e).is_some() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Forgets a key's failures (after a successful login).
pub fn clear(conn: &mut AnyConnection, key: &str) -> StoreResult<()> {
    diesel::delete(login_throttle::table.filter(login_throttle::throttle_key.eq(key)))
        .execute(conn)?;
    Ok(())
}

/// Deletes counters untouched since `before` (housekeeping).
pub fn delete_stale(conn: &mut AnyConnection, before: DateTime<Utc>) -> StoreResult<usize> {
    Ok(diesel::delete(
        login_throttle::table.filter(login_throttle::updated_at.lt(before.naive_utc())),
    )
    .execute(conn)?)
}
