//! The batched write paths ([`super::engine`]): event ingest, tenant creation and channel
//! writes, each a queue with its writer threads, shared by every caller (every HTTP worker of
//! the server).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tenant_core::{Secret, Tenant, TenantId};
use tenant_store::crypto::KeyRing;
use tenant_store::events::Ingested;
use tenant_store::{AnyConnection, Database, StoreError, usage};
use tenant_webhooks::ingest::{Accepted, IngestError, Ingestor, TenantLookup, ValidEvent};

use super::engine::{GroupCommit, GroupCommitConfig};
use crate::api_keys::ApiKeyHasher;
use crate::channel_writes::{self, ChannelAnswer, ChannelWrite};
use crate::error::ServiceResult;
use crate::fleet::{FleetConfig, placement};
use crate::plans::Plans;
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
    /// `POST`, `PATCH` and `DELETE` of `/tenants/{id}/channels…`.
    pub channel_writes: GroupCommit<ChannelWrite, ChannelAnswer>,
}

/// The answer of each request of a batch for which no connection could be had.
fn unavailable(e: &StoreError) -> StoreError {
    e.copy_fault()
        .unwrap_or_else(|| StoreError::Unavailable(e.to_string()))
}

/// Judges the message quotas of the tenants with new messages in a stored batch (the counters
/// were added in the batch's own transaction). A failure here is logged: the events are stored
/// and stay acknowledged, and the next batch judges again.
fn judge_quotas(
    conn: &mut AnyConnection,
    plans: &Plans,
    batch: &[IngestJob],
    answers: &[Result<Accepted, IngestError>],
) {
    let mut tenants: Vec<TenantId> = batch
        .iter()
        .zip(answers)
        .filter_map(|((event, _), answer)| match answer {
            Ok(Accepted {
                tenant_id,
                ingested: Ingested::Accepted { .. },
            }) if usage::is_metered(&event.input().event_type) => Some(*tenant_id),
            _ => None,
        })
        .collect();
    if tenants.is_empty() {
        return;
    }
    tenants.sort_unstable();
    tenants.dedup();
    if let Err(e) = crate::usage::check_quotas(conn, plans, &tenants, tenant_core::now()) {
        tracing::warn!(error = %e, tenants = tenants.len(), "message quotas not judged after an ingest batch");
    }
}

/// Places the tenants a committed batch created, in a second transaction (a new tenant has no
/// channel yet, so until then no account of it is served anywhere). A failure is logged: the
/// tenants stay on `default`, and `POST /tenants/{id}/placement` moves them.
fn place_created(
    conn: &mut AnyConnection,
    fleet: &FleetConfig,
    batch: &[CreateTenant],
    answers: &[ServiceResult<(Tenant, Secret)>],
) {
    let created: Vec<placement::Created> = batch
        .iter()
        .zip(answers)
        .filter_map(|(create, answer)| {
            let (tenant, _) = answer.as_ref().ok()?;
            Some((create.ctx.clone(), tenant.id, tenant.plan))
        })
        .collect();
    if let Err(e) = placement::place_new(conn, fleet, &created) {
        tracing::warn!(error = %e, tenants = created.len(), "placing new tenants failed: they stay on the default gateway");
    }
}

impl WritePaths {
    /// Starts the writer threads of every path; the ingest path judges the message quotas of
    /// `plans` after each batch, the tenant path places each batch's new tenants on the gateways
    /// of `fleet`, the channel path checks the channel limits of `plans` and seals credentials
    /// with `keys`.
    pub fn start(
        db: &Database,
        config: &GroupCommitConfig,
        hasher: ApiKeyHasher,
        plans: Arc<Plans>,
        keys: Arc<KeyRing>,
        fleet: Arc<FleetConfig>,
    ) -> std::io::Result<Self> {
        let ingestor = Ingestor::new(TenantLookup::default());
        let ingest_plans = Arc::clone(&plans);
        let ingest = GroupCommit::start(
            "ingest",
            "ingest",
            db.clone(),
            config,
            move |conn, batch: &[IngestJob]| {
                let answers = ingestor.ingest_batch(conn, batch);
                judge_quotas(conn, &ingest_plans, batch, &answers);
                answers
            },
            |e| Err(IngestError::Store(unavailable(e))),
        )?;
        let tenant_creates = GroupCommit::start(
            "tenant-create",
            "tenant_create",
            db.clone(),
            config,
            move |conn, batch: &[CreateTenant]| {
                let answers = tenants::create_tenants(conn, &hasher, batch);
                place_created(conn, &fleet, batch, &answers);
                answers
            },
            |e| Err(unavailable(e).into()),
        )?;
        let channel_writes = GroupCommit::start(
            "channel",
            "channel_write",
            db.clone(),
            config,
            move |conn, batch: &[ChannelWrite]| {
                channel_writes::write_channels(conn, &keys, &plans, batch)
            },
            |e| Err(unavailable(e).into()),
        )?;
        Ok(Self {
            ingest,
            tenant_creates,
            channel_writes,
        })
    }
}
