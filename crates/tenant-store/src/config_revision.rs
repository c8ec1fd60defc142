//! The gateway-config revision: a counter every config-affecting change bumps in its own
//! transaction, so any replica can tell with one small query whether its cached rendering is
//! current. The counter is spread over [`SLOTS`] rows to keep concurrent writers off one row lock;
//! the revision is the sum of the slots.

use diesel::prelude::*;
use rand::Rng;

use crate::schema::config_revision;
use crate::{AnyConnection, StoreResult};

/// Number of counter rows.
pub const SLOTS: i32 = 16;

/// Raises the revision by one. Call inside the transaction that makes the change.
pub fn bump(conn: &mut AnyConnection) -> QueryResult<()> {
    let slot = random_slot();
    diesel::update(config_revision::table.find(slot))
        .set(config_revision::revision.eq(config_revision::revision + 1))
        .execute(conn)
        .map(drop)
}

/// Raises the revision by `n` in `slot` (a batch's changes: one row lock, not `n`); nothing
/// when `n` is zero, so an empty batch makes no replica render again.
pub fn bump_by(conn: &mut AnyConnection, slot: i32, n: usize) -> QueryResult<()> {
    if n > 0 {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        diesel::update(config_revision::table.find(slot))
            .set(config_revision::revision.eq(config_revision::revision + n))
            .execute(conn)?;
    }
    Ok(())
}

/// A random slot, for [`bump_by`].
pub fn random_slot() -> i32 {
    rand::rng().random_range(0..SLOTS)
}

/// The current revision: the sum of the slots (16 rows; summed here because `SUM(BIGINT)` has a
/// different type on each backend).
pub fn current(conn: &mut AnyConnection) -> StoreResult<i64> {
    let revisions: Vec<i64> = config_revision::table
        .select(config_revision::revision)
        .load(conn)?;
    Ok(revisions.iter().sum())
}
