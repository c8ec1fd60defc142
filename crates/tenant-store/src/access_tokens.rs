//! Service tokens: operator tokens (full access) and gateway tokens (read the gateway config),
//! stored only as hashes.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::error::unique_violation;
use crate::schema::access_tokens;
use crate::{AnyConnection, StoreError, StoreResult};

/// What a service token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenScope {
    /// Everything.
    Operator,
    /// Read the gateway configuration.
    Gateway,
}

impl TokenScope {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Operator => "operator",
            TokenScope::Gateway => "gateway",
        }
    }
}

/// A stored service token (its hash, never the token).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = access_tokens)]
pub struct AccessTokenRow {
    /// UUID text.
    pub id: String,
    /// `operator` or `gateway`.
    pub scope: String,
    /// A unique label, e.g. `bootstrap-operator`.
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
    scope: TokenScope,
    name: &str,
    token_hash: &str,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let row = AccessTokenRow {
        id: Uuid::new_v4().to_string(),
        scope: scope.as_str().to_owned(),
        name: name.to_owned(),
        token_hash: token_hash.to_owned(),
        created_at: now.naive_utc(),
        last_used_at: None,
    };
    match conn.transaction(|c| {
        diesel::insert_into(access_tokens::table)
            .values(&row)
            .execute(c)
    }) {
        Ok(_) => Ok(true),
        Err(e) if unique_violation(&e).is_some() => Ok(false),
        Err(e) => Err(StoreError::from(e)),
    }
}

/// The hashes of every token of a scope.
pub fn hashes(conn: &mut AnyConnection, scope: TokenScope) -> StoreResult<Vec<String>> {
    Ok(access_tokens::table
        .filter(access_tokens::scope.eq(scope.as_str()))
        .select(access_tokens::token_hash)
        .order(access_tokens::created_at.asc())
        .load(conn)?)
}

/// Removes the token with this name; returns whether one existed.
pub fn delete_by_name(conn: &mut AnyConnection, name: &str) -> StoreResult<bool> {
    let n =
        diesel::delete(access_tokens::table.filter(access_tokens::name.eq(name))).execute(conn)?;
    Ok(n > 0)
}
