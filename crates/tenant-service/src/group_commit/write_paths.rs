//! The batched write paths ([`super::engine`]): event ingest, tenant creation, channel writes,
//! webhook endpoint writes and API key issues, each a queue with its writer threads, shared by
//! every caller (every HTTP worker of the server).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tenant_core::{Secret, Tenant};
use tenant_store::crypto::KeyRing;
use tenant_store::usage::MessageCounter;
use tenant_store::{AnyConnection, Database, StoreError};
use tenant_webhooks::ingest::{Accepted, IngestError, Ingestor, TenantLookup, ValidEvent};

use super::engine::{GroupCommit, GroupCommitConfig};
use crate::api_keys::ApiKeyHasher;
use crate::api_keys::batch::{self as key_batch, KeyIssue};
use crate::api_keys::issue::IssuedKey;
use crate::channel_writes::{self, ChannelAnswer, ChannelWrite};
use crate::error::ServiceResult;
use crate::fleet::{FleetConfig, placement};
use crate::plans::Plans;
use crate::tenants::{self, CreateTenant};
use crate::webhooks::endpoint_writes::{self, EndpointAnswer, EndpointWrite};

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
    /// `POST` and `PATCH` of `/tenants/{id}/webhooks…`.
    pub endpoint_writes: GroupCommit<EndpointWrite, EndpointAnswer>,
    /// `POST /tenants/{id}/api-keys`.
    pub key_issues: GroupCommit<KeyIssue, ServiceResult<IssuedKey>>,
}

/// The answer of each request of a batch for which no connection could be had.
fn unavailable(e: &StoreError) -> StoreError {
    e.copy_fault()
        .unwrap_or_else(|| StoreError::Unavailable(e.to_string()))
}

/// Judges the message quotas of the tenants with new messages in a stored batch, from the
/// counters the batch's own upserts answered (no read of them after the batch). A tenant with
/// no newly counted message has none and is not judged. A failure here is logged: the events
/// are stored and stay acknowledged, and the next batch judges again.
fn judge_quotas(conn: &mut AnyConnection, plans: &Plans, counters: Vec<MessageCounter>) {
    if counters.is_empty() {
        return;
    }
    let n = counters.len();
    if let Err(e) = crate::usage::judge_counters(conn, plans, counters, tenant_core::now()) {
        tracing::warn!(error = %e, counters = n, "message quotas not judged after an ingest batch");
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
            Some((
                create.ctx.clone(),
                tenant.id,
                tenant.plan,
                create.new.dedicated,
            ))
        })
        .collect();
    if let Err(e) = placement::place_new(conn, fleet, &created) {
        tracing::warn!(error = %e, tenants = created.len(), "placing new tenants failed: they stay on the default gateway");
    }
}

impl WritePaths {
    /// Starts the writer threads of every path; the ingest path judges the message quotas of
    /// `plans` after each batch, the tenant path places each batch's new tenants on the gateways
    /// of `fleet`, the channel and endpoint paths check the limits of `plans` and seal
    /// credentials and signing secrets with `keys`; tenant creates and key issues hash keys with
    /// `hasher`.
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
                let done = ingestor.ingest_batch(conn, batch);
                judge_quotas(conn, &ingest_plans, done.counters);
                done.answers
            },
            |e| Err(IngestError::Store(unavailable(e))),
        )?;
        let key_hasher = hasher.clone();
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
        // One writer each for channels and endpoints whatever `config.writers` says: their
        // limits are counted by the batch statements, so two batches of one path must not run
        // at once (a statement does not see what a concurrent one inserts).
        let one_writer = GroupCommitConfig {
            writers: 1,
            ..config.clone()
        };
        let (channel_keys, channel_plans) = (Arc::clone(&keys), Arc::clone(&plans));
        let channel_writes = GroupCommit::start(
            "channel",
            "channel_write",
            db.clone(),
            &one_writer,
            move |conn, batch: &[ChannelWrite]| {
                channel_writes::write_channels(conn, &channel_keys, &channel_plans, batch)
            },
            |e| Err(unavailable(e).into()),
        )?;
        let endpoint_writes = GroupCommit::start(
            "webhook-endpoint",
            "webhook_endpoint_write",
            db.clone(),
            &one_writer,
            move |conn, batch: &[EndpointWrite]| {
                endpoint_writes::write_endpoints(conn, &keys, &plans, batch)
            },
            |e| Err(unavailable(e).into()),
        )?;
        let key_issues = GroupCommit::start(
            "api-key",
            "api_key_issue",
            db.clone(),
            config,
            move |conn, batch: &[KeyIssue]| key_batch::issue_keys(conn, &key_hasher, batch),
            |e| Err(unavailable(e).into()),
        )?;
        Ok(Self {
            ingest,
            tenant_creates,
            channel_writes,
            endpoint_writes,
            key_issues,
        })
    }
}
