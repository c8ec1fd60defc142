//! Embedded migrations for both backends.
//!
//! Both trees are compiled into the binary. PostgreSQL runs them under an advisory lock so that
//! replicas started together never race; SQLite has one writer by construction.

use diesel::RunQueryDsl;
use diesel::sql_query;
use diesel::sql_types::BigInt;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::{AnyConnection, StoreError, StoreResult};

/// The PostgreSQL migrations (`migrations/postgres`).
pub const POSTGRES: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
/// The SQLite migrations (`migrations/sqlite`).
pub const SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// The advisory lock key that serializes migrations across processes ("moltbot" + 1).
const LOCK_KEY: i64 = 0x6d6f_6c74_626f_7401;

fn migration_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Migration(e.to_string())
}

/// Runs every pending migration; returns the versions applied.
pub fn run_pending(conn: &mut AnyConnection) -> StoreResult<Vec<String>> {
    match conn {
        AnyConnection::Postgresql(c) => {
            sql_query("SELECT pg_advisory_lock($1)")
                .bind::<BigInt, _>(LOCK_KEY)
                .execute(c)?;
            let result = c
                .run_pending_migrations(POSTGRES)
                .map(|v| v.iter().map(ToString::to_string).collect())
                .map_err(migration_error);
            let unlocked = sql_query("SELECT pg_advisory_unlock($1)")
                .bind::<BigInt, _>(LOCK_KEY)
                .execute(c);
            let applied = result?;
            unlocked?;
            Ok(applied)
        }
        AnyConnection::Sqlite(c) => c
            .run_pending_migrations(SQLITE)
            .map(|v| v.iter().map(ToString::to_string).collect())
            .map_err(migration_error),
    }
}

/// Versions not yet applied.
pub fn pending(conn: &mut AnyConnection) -> StoreResult<Vec<String>> {
    let names = match conn {
        AnyConnection::Postgresql(c) => c
            .pending_migrations(POSTGRES)
            .map_err(migration_error)?
            .iter()
            .map(|m| m.name().to_string())
            .collect(),
        AnyConnection::Sqlite(c) => c
            .pending_migrations(SQLITE)
            .map_err(migration_error)?
            .iter()
            .map(|m| m.name().to_string())
            .collect(),
    };
    Ok(names)
}

/// Reverts every applied migration (for tests and disaster recovery only).
pub fn revert_all(conn: &mut AnyConnection) -> StoreResult<Vec<String>> {
    let reverted = match conn {
        AnyConnection::Postgresql(c) => c.revert_all_migrations(POSTGRES),
        AnyConnection::Sqlite(c) => c.revert_all_migrations(SQLITE),
    };
    reverted
        .map(|v| v.iter().map(ToString::to_string).collect())
        .map_err(migration_error)
}

/// Reverts the last applied migration; returns its version (for tests and disaster recovery
/// only).
pub fn revert_last(conn: &mut AnyConnection) -> StoreResult<String> {
    let reverted = match conn {
        AnyConnection::Postgresql(c) => c.revert_last_migration(POSTGRES),
        AnyConnection::Sqlite(c) => c.revert_last_migration(SQLITE),
    };
    reverted.map(|v| v.to_string()).map_err(migration_error)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    fn names(dir: &str) -> BTreeSet<String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../migrations")
            .join(dir);
        std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().unwrap().is_dir())
            .map(|e| e.file_name().into_string().unwrap())
            .collect()
    }

    #[test]
    fn both_backends_have_the_same_migrations() {
        let pg = names("postgres");
        let sqlite = names("sqlite");
        assert!(!pg.is_empty());
        assert_eq!(
            pg, sqlite,
            "migrations/postgres and migrations/sqlite must match"
        );
        for dir in ["postgres", "sqlite"] {
            for name in &pg {
                let m = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../migrations")
                    .join(dir)
                    .join(name);
                assert!(m.join("up.sql").is_file(), "{dir}/{name}/up.sql");
                assert!(m.join("down.sql").is_file(), "{dir}/{name}/down.sql");
            }
        }
    }
}
