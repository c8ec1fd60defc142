//! The database as the use cases reach it: opening it with its schema brought up to date, and
//! [`run`], the one place where async code crosses into synchronous Diesel.
//!
//! Use cases are synchronous functions on a `&mut AnyConnection`, so they compose in one
//! transaction; an async caller (the HTTP server's handlers, [`crate::ControlPlane`], the
//! background tasks) runs them through [`run`] on the runtime's blocking pool with a pooled
//! connection, never on an async worker thread.

use tenant_store::{AnyConnection, Database, DatabaseUrl, PoolConfig, StoreError, migrations};

use crate::error::ServiceError;

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// It could not be reached, migrated or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// PostgreSQL has migrations the caller did not allow to run.
    #[error("the database has {0} pending migration(s)")]
    PendingMigrations(usize),
}

/// Connects a pool (`pool`: its size, timeouts and reconnection backoff) and brings the schema up
/// to date: SQLite always migrates on open; PostgreSQL only with `migrate`, else an outdated
/// schema is refused (several replicas must not race to migrate it: `moltbot-saas migrate` does
/// it once).
pub fn open(url: &DatabaseUrl, pool: &PoolConfig, migrate: bool) -> Result<Database, OpenError> {
    let db = Database::connect(url, pool)?;
    let mut conn = db.get()?;
    let sqlite = matches!(url, DatabaseUrl::Sqlite(_));
    if sqlite || migrate {
        let applied = migrations::run_pending(&mut conn)?;
        if !applied.is_empty() {
            tracing::info!(migrations.applied = applied.len(), "database migrated");
        }
    } else {
        let pending = migrations::pending(&mut conn)?;
        if !pending.is_empty() {
            return Err(OpenError::PendingMigrations(pending.len()));
        }
    }
    drop(conn);
    Ok(db)
}

/// Applies every pending migration with a single connection (what `moltbot-saas migrate` does,
/// once, before replicas start); returns the versions applied.
pub fn migrate(url: &DatabaseUrl, pool: &PoolConfig) -> Result<Vec<String>, StoreError> {
    let db = Database::connect(
        url,
        &PoolConfig {
            max_size: 1,
            ..pool.clone()
        },
    )?;
    migrations::run_pending(&mut *db.get()?)
}

/// Runs blocking database work on the runtime's blocking pool with a pooled connection. A pool
/// that has no connection to give answers [`ServiceError::Store`] (unavailable), a task that died
/// [`ServiceError::Internal`], both converted into the caller's error type.
pub async fn run<T, E, F>(db: &Database, work: F) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<ServiceError> + Send + 'static,
{
    let db = db.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = db.get().map_err(|e| E::from(ServiceError::Store(e)))?;
        work(&mut conn)
    })
    .await
    .map_err(|e| E::from(ServiceError::Internal(format!("blocking task failed: {e}"))))?
}
