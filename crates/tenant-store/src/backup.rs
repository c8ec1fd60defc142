//! Online backups of the embedded SQLite database: a consistent copy taken while the server
//! runs and writes (PostgreSQL has its own tools: base backups and WAL archiving).

use std::path::Path;

use diesel::RunQueryDsl;
use diesel::sql_types::Text;

use crate::{AnyConnection, StoreResult};

/// Writes a consistent copy of the SQLite database behind `conn` to `out` (`VACUUM INTO`: one
/// read transaction, so the copy holds exactly what was committed when it started, and writers
/// go on meanwhile; the copy is compact and needs no WAL). `out` must not exist. Returns
/// `false`, writing nothing, on PostgreSQL.
pub fn sqlite_into(conn: &mut AnyConnection, out: &Path) -> StoreResult<bool> {
    let AnyConnection::Sqlite(c) = conn else {
        return Ok(false);
    };
    diesel::sql_query("VACUUM INTO ?")
        .bind::<Text, _>(out.to_string_lossy().into_owned())
        .execute(c)?;
    Ok(true)
}
