//! Keyset pagination helpers shared by the list queries: rows are ordered by
//! `(created_at, id)` and a page starts after the cursor's row.

use chrono::NaiveDateTime;
use tenant_core::Cursor;
use uuid::Uuid;

use crate::{StoreError, StoreResult};

/// The cursor of a row of `table`: its creation time and id. A stored id that is not a UUID is
/// reported as a corrupt row rather than silently ending the listing.
pub(crate) fn cursor_of(
    table: &'static str,
    created_at: NaiveDateTime,
    id: &str,
) -> StoreResult<Cursor> {
    Ok(Cursor {
        created_at: created_at.and_utc(),
        id: Uuid::parse_str(id).map_err(|e| StoreError::Corrupt {
            table,
            id: id.to_owned(),
            reason: e.to_string(),
        })?,
    })
}
