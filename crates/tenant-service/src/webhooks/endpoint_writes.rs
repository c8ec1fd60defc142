//! Webhook endpoint creates and updates of concurrent requests as one batch (group commit,
//! [`crate::group_commit`]), as channel writes are (`crate::write_batch`): each kind written
//! for the whole batch in one statement (`tenant_store::endpoint_batch`) with its audit rows and
//! the creates' `Idempotency-Key` rows; secrets are made and sealed and rows built before it,
//! and the plan limits of the batch's tenants are read together.
//!
//! A create is written only while its tenant has room under both its plan's endpoint limit and
//! the hard cap of endpoints per tenant, counting the batch's earlier creates; one without room
//! (or without a tenant) is made again alone ([`endpoints::add_endpoint`]), which answers 403
//! `plan_limit_reached`, 409 or 404 as before. Creates and updates of one process are written by
//! one writer, so concurrent creates never take a tenant past its limit.

use tenant_core::{Secret, TenantId};
use tenant_store::AnyConnection;
use tenant_store::audit::{self, AuditContext};
use tenant_store::crypto::KeyRing;
use tenant_store::endpoint_batch::{self, EndpointChange, EndpointToCreate};
use tenant_store::webhooks::{
    Endpoint, EndpointPatch, MAX_ENDPOINTS_PER_TENANT, NewEndpoint, NewEndpointRow,
};
use uuid::Uuid;

use super::endpoints;
use crate::error::{ServiceError, ServiceResult};
use crate::idempotency::Ticket;
use crate::plans::Plans;
use crate::write_batch::{Answers, OfTenant, firsts, limited_creates};

/// What a request does to a tenant's endpoints.
// Made once per request and moved into the queue: boxing the large variant would cost an
// allocation for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum EndpointOp {
    /// Adds an endpoint (checked); with the request's `Idempotency-Key` ticket, its row is
    /// written with it.
    Create {
        /// The endpoint.
        new: NewEndpoint,
        /// The request's ticket, if it had a key.
        once: Option<Ticket<(Endpoint, Secret)>>,
    },
    /// Changes an endpoint (checked).
    Update {
        /// The endpoint.
        id: Uuid,
        /// What changes.
        patch: EndpointPatch,
    },
}

/// One endpoint write of a batch: who asks, on which tenant, what.
#[derive(Debug)]
pub struct EndpointWrite {
    /// The caller, for the audit log.
    pub ctx: AuditContext,
    /// The tenant.
    pub tenant_id: TenantId,
    /// The write.
    pub op: EndpointOp,
}

impl OfTenant for EndpointWrite {
    fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }
}

/// The answer to an endpoint write: the endpoint as stored, and a created one's signing secret
/// (shown once).
pub type EndpointAnswer = ServiceResult<(Endpoint, Option<Secret>)>;

/// Writes the endpoint requests of a batch (see the module doc); answers in order.
pub fn write_endpoints(
    conn: &mut AnyConnection,
    ring: &KeyRing,
    plans: &Plans,
    batch: &[EndpointWrite],
) -> Vec<EndpointAnswer> {
    let now = tenant_core::now();
    let mut answers = Answers::new(batch.len());
    let first = firsts(batch, |w| match &w.op {
        EndpointOp::Create { .. } => None,
        EndpointOp::Update { id, .. } => Some(*id),
    });
    let (creates, updates): (Vec<usize>, Vec<usize>) = (0..batch.len())
        .filter(|&i| first[i])
        .partition(|&i| matches!(batch[i].op, EndpointOp::Create { .. }));
    if !creates.is_empty() {
        create(conn, ring, plans, batch, &creates, now, &mut answers);
    }
    if !updates.is_empty() {
        update(conn, batch, &updates, now, &mut answers);
    }
    answers.finish(batch, |w| alone(conn, ring, plans, w))
}

/// The creates of the batch in one statement.
fn create(
    conn: &mut AnyConnection,
    ring: &KeyRing,
    plans: &Plans,
    batch: &[EndpointWrite],
    at: &[usize],
    now: chrono::DateTime<chrono::Utc>,
    answers: &mut Answers<(Endpoint, Option<Secret>)>,
) {
    let creates = limited_creates(
        conn,
        plans,
        batch,
        at,
        answers,
        |limits| limits.max_webhook_endpoints.min(MAX_ENDPOINTS_PER_TENANT),
        |w, room| {
            let EndpointOp::Create { new, once } = &w.op else {
                return None;
            };
            let (new, secret) = endpoints::with_new_secret(new.clone());
            Some(
                NewEndpointRow::seal(&w.tenant_id, &new, now, ring)
                    .map_err(ServiceError::from)
                    .and_then(|(row, endpoint)| {
                        let out = (endpoint, secret);
                        let idempotency = once.as_ref().map(|t| t.row(&out, now)).transpose()?;
                        let event = endpoints::created_event(&w.tenant_id, &out.0);
                        let item = EndpointToCreate {
                            row,
                            room,
                            audit: audit::row(&w.ctx, event, now),
                            idempotency,
                        };
                        Ok((item, out))
                    }),
            )
        },
    );
    let written = endpoint_batch::create_many(conn, &creates.items);
    answers.settle_made(&creates.taken, written, creates.made, |(e, s)| (e, Some(s)));
}

/// The updates of the batch in one statement, each applied to its row as it is then.
fn update(
    conn: &mut AnyConnection,
    batch: &[EndpointWrite],
    at: &[usize],
    now: chrono::DateTime<chrono::Utc>,
    answers: &mut Answers<(Endpoint, Option<Secret>)>,
) {
    let mut taken = Vec::with_capacity(at.len());
    let mut items = Vec::with_capacity(at.len());
    for &i in at {
        let w = &batch[i];
        let EndpointOp::Update { id, patch } = &w.op else {
            continue;
        };
        let event = endpoints::updated_event(&w.tenant_id, *id, patch);
        taken.push(i);
        items.push(EndpointChange {
            tenant_id: w.tenant_id,
            id: *id,
            patch: patch.clone(),
            now,
            audit: audit::row(&w.ctx, event, now),
        });
    }
    let written = endpoint_batch::update_many(conn, &items);
    answers.settle(&taken, written, |e| (e, None));
}

/// One write through the one-request path, in its own transaction.
fn alone(
    conn: &mut AnyConnection,
    ring: &KeyRing,
    plans: &Plans,
    w: &EndpointWrite,
) -> EndpointAnswer {
    let (ctx, tenant_id) = (&w.ctx, &w.tenant_id);
    match &w.op {
        EndpointOp::Create { new, once } => endpoints::add_endpoint(
            conn,
            ctx,
            plans,
            tenant_id,
            new.clone(),
            ring,
            once.as_ref(),
        )
        .map(|(e, s)| (e, Some(s))),
        EndpointOp::Update { id, patch } => {
            endpoints::update_endpoint(conn, ctx, tenant_id, *id, patch.clone())
                .map(|e| (e, None))
                .map_err(Into::into)
        }
    }
}
