//! The batched write paths ([`super::engine`]): event ingest and tenant creation, each a queue
//! with its writer threads, shared by every caller (every HTTP worker of the server).

use chrono::{DateTime, Utc};
use tenant_core::{Secret, Tenant};
use tenant_store::{Database, StoreError};
use tenant_webhooks::ingest::{Accepted, IngestError, Ingestor, TenantLookup, ValidEvent};

use super::engine::{GroupCommit, GroupCommitConfig};
use crate::api_keys::ApiKeyHasher;
use crate::error::ServiceResult;
use crate::tenants::{self, CreateTenant};

/// An event to ingest, validated, with the time it was received.
pub type IngestJob = (ValidEvent, DateTime<Utc>);

/// The batched write paths.
#[derive(Debug)]
pub struct WritePaths {
    /// `POST /events` and `POST /webhooks/message`.
    pub ingest: GroupCommit<IngestJob, Result<Accepted, IngestError>>,
    /// `POST /tenants`.
    pub tenant_creates: GroupCommit<CreateTenant, ServiceResult<(Tenant, Secret)>>,
}

/// The answer of each request of a batch for which no connection could be had.
fn unavailable(e: &StoreError) -> StoreError {
    e.copy_fault()
        .unwrap_or_else(|| StoreError::Unavailable(e.to_string()))
}

impl WritePaths {
    /// Starts the writer threads of both paths.
    pub fn start(
        db: &Database,
        config: &GroupCommitConfig,
        hasher: ApiKeyHasher,
    ) -> std::io::Result<Self> {
        let ingestor = Ingestor::new(TenantLookup::default());
        let ingest = GroupCommit::start(
            "ingest",
            "ingest",
            db.clone(),
            config,
            move |conn, batch: &[IngestJob]| ingestor.ingest_batch(conn, batch),
            |e| Err(IngestError::Store(unavailable(e))),
        )?;
        let tenant_creates = GroupCommit::start(
            "tenant-create",
            "tenant_create",
            db.clone(),
            config,
            move |conn, batch: &[CreateTenant]| tenants::create_tenants(conn, &hasher, batch),
            |e| Err(unavailable(e).into()),
        )?;
        Ok(Self {
            ingest,
            tenant_creates,
        })
    }
}
