//! Group commit of the write paths that take the most requests: [`engine`] runs the write
//! requests of concurrent callers as one batch (one transaction, on PostgreSQL one statement per
//! table), [`write_paths`] holds the two paths built on it, event ingest and tenant creation.

pub mod engine;
pub mod write_paths;

pub use engine::{GroupCommit, GroupCommitConfig, GroupCommitError};
pub use write_paths::{IngestJob, WritePaths};
