//! Channel writes of concurrent requests as one batch (group commit, [`crate::group_commit`]):
//! creates, updates (credential rotations among them) and deletes. Each kind is written for the
//! whole batch in one statement (`tenant_store::channel_batch`), with its audit rows,
//! `Idempotency-Key` rows and config revision; work that does not need the database (sealing
//! credentials, building the rows) is done before it, and the plan limits of the batch's
//! tenants are read together.
//!
//! A write the batch statement cannot make as asked (no such tenant or channel, the kind taken,
//! no room, a row changed since it was read, a second write of one channel in the batch) is
//! made again alone through the one-request path ([`crate::channels`]), which answers it
//! precisely (`crate::write_batch`); so every request gets the answer it would have had
//! alone. Each request is answered once what it wrote committed.

use tenant_core::{Channel, ChannelKind, ChannelUpdate, NewChannel, TenantId};
use tenant_store::AnyConnection;
use tenant_store::audit::{self, AuditContext};
use tenant_store::channel_batch::{self, ChannelChange, ChannelToCreate, ChannelToDelete};
use tenant_store::channels::ChannelRow;
use tenant_store::crypto::KeyRing;

use crate::channels;
use crate::error::{ServiceError, ServiceResult};
use crate::idempotency::Ticket;
use crate::plans::Plans;
use crate::write_batch::{Answers, OfTenant, firsts, limited_creates};

/// What a request does to a tenant's channel.
// Made once per request and moved into the queue: boxing the large variant would cost an
// allocation for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum ChannelOp {
    /// Adds a channel; with the request's `Idempotency-Key` ticket, its row is written with it.
    Create {
        /// The channel.
        new: NewChannel,
        /// The request's ticket, if it had a key.
        once: Option<Ticket<Channel>>,
    },
    /// Changes the tenant's channel of this kind.
    Update {
        /// The channel's kind.
        kind: ChannelKind,
        /// What changes.
        update: ChannelUpdate,
    },
    /// Removes the tenant's channel of this kind.
    Delete {
        /// The channel's kind.
        kind: ChannelKind,
    },
}

/// One channel write of a batch: who asks, on which tenant, what.
#[derive(Debug)]
pub struct ChannelWrite {
    /// The caller, for the audit log.
    pub ctx: AuditContext,
    /// The tenant.
    pub tenant_id: TenantId,
    /// The write.
    pub op: ChannelOp,
}

impl OfTenant for ChannelWrite {
    fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }
}

impl ChannelWrite {
    fn kind(&self) -> ChannelKind {
        match &self.op {
            ChannelOp::Create { new, .. } => new.kind,
            ChannelOp::Update { kind, .. } | ChannelOp::Delete { kind } => *kind,
        }
    }
}

/// The answer to a channel write: the channel as stored (`None` once deleted).
pub type ChannelAnswer = ServiceResult<Option<Channel>>;

/// Writes the channel requests of a batch (see the module doc); answers in order.
pub fn write_channels(
    conn: &mut AnyConnection,
    ring: &KeyRing,
    plans: &Plans,
    batch: &[ChannelWrite],
) -> Vec<ChannelAnswer> {
    let now = tenant_core::now();
    let mut answers = Answers::new(batch.len());
    let first = firsts(batch, |w| Some((w.tenant_id, w.kind())));
    let pick = |want: fn(&ChannelOp) -> bool| -> Vec<usize> {
        (0..batch.len())
            .filter(|&i| first[i] && want(&batch[i].op))
            .collect()
    };

    let creates = pick(|op| matches!(op, ChannelOp::Create { .. }));
    if !creates.is_empty() {
        create(conn, ring, plans, batch, &creates, now, &mut answers);
    }
    let updates = pick(|op| matches!(op, ChannelOp::Update { .. }));
    if !updates.is_empty() {
        update(conn, ring, batch, &updates, now, &mut answers);
    }
    let deletes = pick(|op| matches!(op, ChannelOp::Delete { .. }));
    if !deletes.is_empty() {
        delete(conn, batch, &deletes, now, &mut answers);
    }
    answers.finish(batch, |w| alone(conn, ring, plans, w))
}

/// The creates of the batch in one statement.
fn create(
    conn: &mut AnyConnection,
    ring: &KeyRing,
    plans: &Plans,
    batch: &[ChannelWrite],
    at: &[usize],
    now: chrono::DateTime<chrono::Utc>,
    answers: &mut Answers<Option<Channel>>,
) {
    let creates = limited_creates(
        conn,
        plans,
        batch,
        at,
        answers,
        |limits| limits.max_channels,
        |w, room| {
            let ChannelOp::Create { new, once } = &w.op else {
                return None;
            };
            let channel = new.clone().into_channel(w.tenant_id, now);
            Some(
                ChannelRow::seal(&channel, ring)
                    .map_err(ServiceError::from)
                    .and_then(|row| {
                        let idempotency =
                            once.as_ref().map(|t| t.row(&channel, now)).transpose()?;
                        let event = channels::created_event(&w.tenant_id, &channel);
                        let item = ChannelToCreate {
                            row,
                            room,
                            audit: audit::row(&w.ctx, event, now),
                            idempotency,
                        };
                        Ok((item, channel))
                    }),
            )
        },
    );
    let written = channel_batch::create_many(conn, &creates.items);
    answers.settle_made(&creates.taken, written, creates.made, Some);
}

/// The updates of the batch: their rows read in one statement, changed, written in one.
fn update(
    conn: &mut AnyConnection,
    ring: &KeyRing,
    batch: &[ChannelWrite],
    at: &[usize],
    now: chrono::DateTime<chrono::Utc>,
    answers: &mut Answers<Option<Channel>>,
) {
    let tenants: Vec<TenantId> = at.iter().map(|&i| batch[i].tenant_id).collect();
    let rows = match channel_batch::rows_of_tenants(conn, &tenants) {
        Ok(rows) => rows,
        Err(e) => return answers.fail(at, &e),
    };
    let mut taken = Vec::with_capacity(at.len());
    let mut items = Vec::with_capacity(at.len());
    let mut changed = Vec::with_capacity(at.len());
    for &i in at {
        let w = &batch[i];
        let ChannelOp::Update { kind, update } = &w.op else {
            continue;
        };
        let tenant = w.tenant_id.to_string();
        // No such channel, or one that does not open: answered alone.
        let Some(row) = rows
            .iter()
            .find(|r| r.tenant_id == tenant && r.kind == kind.as_str())
        else {
            continue;
        };
        let old_credentials = row.credentials.clone();
        let Ok(mut channel) = row.clone().open(ring) else {
            continue;
        };
        let fields = channels::fields_of(update);
        update.clone().apply(&mut channel, now);
        match ChannelRow::seal(&channel, ring) {
            Ok(row) => {
                taken.push(i);
                items.push(ChannelChange {
                    old_credentials,
                    row,
                    audit: audit::row(
                        &w.ctx,
                        channels::updated_event(&w.tenant_id, &channel, fields),
                        now,
                    ),
                });
                changed.push(channel);
            }
            Err(e) => answers.set(i, Err(e.into())),
        }
    }
    let written = channel_batch::update_many(conn, &items);
    answers.settle_made(&taken, written, changed, Some);
}

/// The deletes of the batch in one statement.
fn delete(
    conn: &mut AnyConnection,
    batch: &[ChannelWrite],
    at: &[usize],
    now: chrono::DateTime<chrono::Utc>,
    answers: &mut Answers<Option<Channel>>,
) {
    let items: Vec<ChannelToDelete> = at
        .iter()
        .map(|&i| {
            let w = &batch[i];
            let kind = w.kind();
            ChannelToDelete {
                tenant_id: w.tenant_id.to_string(),
                kind: kind.as_str().to_owned(),
                audit: audit::row(&w.ctx, channels::deleted_event(&w.tenant_id, kind), now),
            }
        })
        .collect();
    let written = channel_batch::delete_many(conn, &items);
    answers.settle_made(at, written, std::iter::repeat(()), |()| None);
}

/// One write through the one-request path, in its own transaction.
fn alone(
    conn: &mut AnyConnection,
    ring: &KeyRing,
    plans: &Plans,
    w: &ChannelWrite,
) -> ChannelAnswer {
    let (ctx, tenant_id) = (&w.ctx, &w.tenant_id);
    match &w.op {
        ChannelOp::Create { new, once } => channels::add_channel(
            conn,
            ctx,
            plans,
            tenant_id,
            new.clone(),
            ring,
            once.as_ref(),
        )
        .map(Some),
        ChannelOp::Update { kind, update } => {
            channels::update_channel(conn, ctx, tenant_id, *kind, update.clone(), ring)
                .map(Some)
                .map_err(Into::into)
        }
        ChannelOp::Delete { kind } => channels::delete_channel(conn, ctx, tenant_id, *kind)
            .map(|()| None)
            .map_err(Into::into),
    }
}
