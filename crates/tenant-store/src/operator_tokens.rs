//! Operator tokens: bearer tokens with full access, stored only as hashes.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::error::unique_violation;
use crate::schema::operator_tokens;
use crate::{AnyConnection, StoreError, StoreResult};

/// A stored operator token (its hash, never the token).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = operator_tokens)]
pub struct OperatorTokenRow {
    /// UUID text.
    pub id: String,
    /// A unique label, e.g. `bootstrap`.
    pub name: String,
    /// Hex hash of the token.
    pub token_hash: String,
    /// Creation time (UTC).
    pub created_at: NaiveDateTime,
    /// Last successful use.
    pub last_used_at: Option<NaiveDateTime>,
}

/// Stores a token hash under a unique name. Returns `Ok(false)` when the name is taken (another
/// replica created it first), so bootstrap is safe to race.
pub fn insert_if_absent(
    conn: &mut AnyConnection,
    name: &str,
    token_hash: &str,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let row = OperatorTokenRow {
        id: Uuid::new_v4().to_string(),
        name: name.to_owned(),
        token_hash: token_hash.to_owned(),
        created_at: now.naive_utc(),
        last_used_at: None,
    };
    match conn.transaction(|c| {
        diesel::insert_into(operator_tokens::table)
            .values(&row)
            .execute(c)
    }) {
        Ok(_) => Ok(true),
        Err(e) if unique_violation(&e).is_some() => Ok(false),
        Err(e) => Err(StoreError::from(e)),
    }
}

/// The hashes of every operator token.
pub fn hashes(conn: &mut AnyConnection) -> StoreResult<Vec<String>> {
    Ok(operator_tokens::table
        .select(operator_tokens::token_hash)
        .order(operator_tokens::created_at.asc())
        .load(conn)?)
}

/// Removes the token with this name; returns whether one existed.
pub fn delete_by_name(conn: &mut AnyConnection, name: &str) -> StoreResult<bool> {
    let n = diesel::delete(operator_tokens::table.filter(operator_tokens::name.eq(name)))
        .execute(conn)?;
    Ok(n > 0)
}
