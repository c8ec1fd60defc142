//! Errors of the store, and which of them are faults of the database as a whole.
//!
//! A [`DatabaseFault`] is an error every request would meet right now, whatever it asks: the
//! database cannot be reached (down, restarting, failing over, the connection broke), refuses
//! writes, or has no space left. Diesel errors are classified when they become a
//! [`StoreError`], so callers see [`StoreError::Unavailable`], [`StoreError::ReadOnly`] or
//! [`StoreError::StorageFull`] instead of an opaque database error, and the server can answer
//! 503 or 507 instead of 500.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// What can go wrong reading or writing the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist (or belongs to another tenant).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness rule was violated; `field` names the API field at fault.
    #[error("{message}")]
    Conflict {
        /// The field whose value is taken.
        field: &'static str,
        /// A sentence for the caller.
        message: String,
    },
    /// The database URL is not one this store understands.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// A connection could not be opened (the database is unreachable, or refused us).
    #[error("database connection unavailable: {0}")]
    Pool(String),
    /// The database cannot serve now: it is down or restarting (the circuit is open), the
    /// connection broke, or no connection became free in time. Retrying shortly may succeed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database refuses writes: a read-only file or file system (SQLite), a read-only
    /// server or transaction (PostgreSQL standby, `default_transaction_read_only`).
    #[error("database is read-only: {0}")]
    ReadOnly(String),
    /// The database has no space left to write.
    #[error("database storage is full: {0}")]
    StorageFull(String),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// A stored row violates the domain's rules (written by something other than this store).
    #[error("corrupt {table} row {id}: {reason}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The row's primary key.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A channel's stored credentials could not be opened (unknown key, tampered, or sealed for
    /// another row). Names the row, never the secret.
    #[error("cannot open the credentials of tenant {tenant_id}'s {kind} channel: {reason}")]
    Credentials {
        /// The owning tenant.
        tenant_id: String,
        /// The channel kind.
        kind: String,
        /// What failed.
        reason: String,
    },
    /// A webhook endpoint's stored signing secret could not be opened (unknown key, tampered, or
    /// sealed for another row). Names the row, never the secret.
    #[error(
        "cannot open the signing secret of tenant {tenant_id}'s webhook endpoint {endpoint_id}: {reason}"
    )]
    WebhookSecret {
        /// The owning tenant.
        tenant_id: String,
        /// The endpoint.
        endpoint_id: String,
        /// What failed.
        reason: String,
    },
    /// Any other database error.
    #[error(transparent)]
    Database(DieselError),
}

/// A fault of the database as a whole rather than of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseFault {
    /// It cannot be reached, or the connection broke: retry shortly.
    Unavailable,
    /// It refuses writes.
    ReadOnly,
    /// It has no space left.
    StorageFull,
}

impl StoreError {
    /// The fault of the database as a whole this error is, if it is one.
    pub fn fault(&self) -> Option<DatabaseFault> {
        match self {
            StoreError::Pool(_) | StoreError::Unavailable(_) => Some(DatabaseFault::Unavailable),
            StoreError::ReadOnly(_) => Some(DatabaseFault::ReadOnly),
            StoreError::StorageFull(_) => Some(DatabaseFault::StorageFull),
            StoreError::Database(e) => fault_of(e),
            _ => None,
        }
    }

    /// A copy of a database fault, for the other requests of a batch that failed with it (the
    /// same fault meets them all); `None` for any other error.
    pub fn copy_fault(&self) -> Option<StoreError> {
        let message = match self {
            StoreError::Pool(m)
            | StoreError::Unavailable(m)
            | StoreError::ReadOnly(m)
            | StoreError::StorageFull(m) => m.clone(),
            other => other.to_string(),
        };
        self.fault().map(|f| StoreError::from_fault(f, message))
    }

    /// The error of `fault`, with `message` saying what happened.
    pub fn from_fault(fault: DatabaseFault, message: String) -> StoreError {
        match fault {
            DatabaseFault::Unavailable => StoreError::Unavailable(message),
            DatabaseFault::ReadOnly => StoreError::ReadOnly(message),
            DatabaseFault::StorageFull => StoreError::StorageFull(message),
        }
    }
}

impl From<DieselError> for StoreError {
    fn from(e: DieselError) -> Self {
        match fault_of(&e) {
            Some(fault) => StoreError::from_fault(fault, e.to_string()),
            None => StoreError::Database(e),
        }
    }
}

/// Messages of connection-level failures that Diesel reports as `Unknown`: PostgreSQL's FATAL
/// errors ending a session (57P01 `admin_shutdown`, 57P02 `crash_shutdown`, 57P03
/// `cannot_connect_now`) and libpq's own when the socket fails. Matched lowercased. Diesel
/// already maps SQLSTATE class 08, and any error on a connection libpq knows is bad, to
/// `ClosedConnection`; these are the rest.
const CONNECTION_LOST_MESSAGES: &[&str] = &[
    "terminating connection",
    "server closed the connection",
    "no connection to the server",
    "could not receive data from server",
    "could not send data to server",
    "connection to server",
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
    "the database system is not accepting connections",
    "ssl connection has been closed unexpectedly",
    "ssl syscall error",
];

/// SQLite's errors for a file it cannot reach or a lock it cannot get in time (`SQLITE_CANTOPEN`,
/// `SQLITE_IOERR`, `SQLITE_BUSY` after `busy_timeout`): the connection is fine, the database is
/// not, for now.
const BUSY_MESSAGES: &[&str] = &[
    "unable to open database file",
    "disk i/o error",
    "database is locked",
];

/// SQLite's `SQLITE_FULL`, and PostgreSQL's 53100 `disk_full` (its messages end with the
/// operating system's `ENOSPC` text).
const FULL_MESSAGES: &[&str] = &["database or disk is full", "no space left on device"];

/// SQLite's `SQLITE_READONLY` (a read-only file, directory or file system).
const READ_ONLY_MESSAGES: &[&str] = &["attempt to write a readonly database"];

/// The database fault a Diesel error is, if it is one. Only called on errors, never on the
/// path of a request that succeeds.
pub fn fault_of(e: &DieselError) -> Option<DatabaseFault> {
    if connection_lost(e) {
        return Some(DatabaseFault::Unavailable);
    }
    let info = match e {
        DieselError::DatabaseError(DatabaseErrorKind::ReadOnlyTransaction, _) => {
            return Some(DatabaseFault::ReadOnly);
        }
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => info,
        _ => return None,
    };
    let message = info.message().to_ascii_lowercase();
    let any = |patterns: &[&str]| patterns.iter().any(|p| message.contains(p));
    if any(FULL_MESSAGES) {
        Some(DatabaseFault::StorageFull)
    } else if any(READ_ONLY_MESSAGES) {
        Some(DatabaseFault::ReadOnly)
    } else if any(BUSY_MESSAGES) {
        Some(DatabaseFault::Unavailable)
    } else {
        None
    }
}

/// Whether the error says the connection itself is gone (closed, cannot send, its session
/// terminated by the server, a transaction that could not be rolled back): such a connection
/// must never be used again.
pub(crate) fn connection_lost(e: &DieselError) -> bool {
    match e {
        DieselError::BrokenTransactionManager
        | DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => true,
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let message = info.message().to_ascii_lowercase();
            CONNECTION_LOST_MESSAGES.iter().any(|p| message.contains(p))
        }
        _ => false,
    }
}

/// The column a unique violation is about, if the error is one.
///
/// PostgreSQL names the constraint (`tenants_slug_key`); SQLite names the columns
/// (`UNIQUE constraint failed: tenants.slug`). Both spellings contain the column name.
pub(crate) fn unique_violation(e: &DieselError) -> Option<String> {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => Some(
            info.constraint_name()
                .map_or_else(|| info.message().to_owned(), str::to_owned),
        ),
        _ => None,
    }
}

/// Whether the error is a foreign-key violation (the parent row is gone).
pub(crate) fn is_foreign_key_violation(e: &DieselError) -> bool {
    matches!(
        e,
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _)
    )
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

#[cfg(test)]
mod tests {
    use super::*;

    fn db_error(kind: DatabaseErrorKind, message: &str) -> DieselError {
        DieselError::DatabaseError(kind, Box::new(message.to_owned()))
    }

    fn unknown(message: &str) -> DieselError {
        db_error(DatabaseErrorKind::Unknown, message)
    }

    #[test]
    fn lost_connections_are_unavailable_and_never_reused() {
        for e in [
            db_error(
                DatabaseErrorKind::ClosedConnection,
                "server closed the connection",
            ),
            db_error(
                DatabaseErrorKind::UnableToSendCommand,
                "no connection to the server",
            ),
            DieselError::BrokenTransactionManager,
            unknown("FATAL:  terminating connection due to administrator command"),
            unknown("terminating connection because of crash of another server process"),
            unknown("FATAL:  the database system is shutting down"),
            unknown("could not receive data from server: Connection reset by peer"),
            unknown("SSL SYSCALL error: EOF detected"),
        ] {
            assert_eq!(fault_of(&e), Some(DatabaseFault::Unavailable), "{e}");
            assert!(connection_lost(&e), "{e}");
            assert!(matches!(StoreError::from(e), StoreError::Unavailable(_)));
        }
    }

    #[test]
    fn storage_faults_are_classified_but_keep_the_connection() {
        let cases = [
            (
                unknown("database or disk is full"),
                DatabaseFault::StorageFull,
            ),
            (
                unknown("could not extend file \"base/16384/2619\": No space left on device"),
                DatabaseFault::StorageFull,
            ),
            (
                unknown("attempt to write a readonly database"),
                DatabaseFault::ReadOnly,
            ),
            (
                db_error(
                    DatabaseErrorKind::ReadOnlyTransaction,
                    "cannot execute INSERT in a read-only transaction",
                ),
                DatabaseFault::ReadOnly,
            ),
            (unknown("database is locked"), DatabaseFault::Unavailable),
            (unknown("disk I/O error"), DatabaseFault::Unavailable),
        ];
        for (e, fault) in cases {
            assert_eq!(fault_of(&e), Some(fault), "{e}");
            assert!(!connection_lost(&e), "{e}");
            let store = StoreError::from(e);
            assert_eq!(store.fault(), Some(fault));
            let copy = store.copy_fault().unwrap();
            assert_eq!(copy.fault(), Some(fault));
            assert_eq!(copy.to_string(), store.to_string());
        }
    }

    #[test]
    fn request_errors_are_not_faults() {
        for e in [
            DieselError::NotFound,
            db_error(DatabaseErrorKind::UniqueViolation, "duplicate key"),
            db_error(DatabaseErrorKind::ForeignKeyViolation, "fk"),
            unknown("syntax error at or near \"SELEC\""),
        ] {
            assert_eq!(fault_of(&e), None, "{e}");
            assert!(!connection_lost(&e));
            let store = StoreError::from(e);
            assert!(matches!(store, StoreError::Database(_)));
            assert!(store.fault().is_none() && store.copy_fault().is_none());
        }
        assert_eq!(
            StoreError::Pool("refused".into()).fault(),
            Some(DatabaseFault::Unavailable)
        );
        assert!(StoreError::NotFound("tenant").fault().is_none());
    }
}
