//! Errors of the store.

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
    /// No connection could be had from the pool.
    #[error("database connection unavailable: {0}")]
    Pool(String),
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
    Database(#[from] DieselError),
}

impl From<diesel::r2d2::PoolError> for StoreError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        StoreError::Pool(e.to_string())
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
