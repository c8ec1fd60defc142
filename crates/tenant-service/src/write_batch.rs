//! What the batched administrative write paths share ([`crate::channel_writes`], webhook
//! endpoint writes in [`crate::webhooks::endpoint_writes`], API key issues in
//! [`crate::api_keys::batch`]): a batch's writes of one kind are made by one statement
//! (`tenant_store`'s `*_batch` modules) when they can be made as asked, each answered with what
//! it wrote (creates that plans limit are prepared alike, [`limited_creates`]); the others —
//! no such tenant or resource, no room, a row changed, a second write of one resource in the
//! batch, a statement that failed as a whole — are made again alone by the one-request use
//! case, so each gets the answer it would have had alone. A database that is away answers
//! every write of the statement with its fault (the one-request path would meet it too).

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use tenant_core::TenantId;
use tenant_store::{AnyConnection, StoreError, StoreResult};

use crate::error::ServiceResult;
use crate::plans::{Limits, Plans};

/// The answers of a batch as they are settled; those left unsettled are made alone
/// ([`Answers::finish`]).
pub(crate) struct Answers<T>(Vec<Option<ServiceResult<T>>>);

impl<T> Answers<T> {
    /// No answer yet for any of `n` writes.
    pub(crate) fn new(n: usize) -> Self {
        Self((0..n).map(|_| None).collect())
    }

    /// Answers write `i`.
    pub(crate) fn set(&mut self, i: usize, answer: ServiceResult<T>) {
        self.0[i] = Some(answer);
    }

    /// Settles the writes `at` of one batch statement: `written` has, for each, what it wrote
    /// (`None`: not made, left to be made alone), answered through `answer`.
    pub(crate) fn settle<V>(
        &mut self,
        at: &[usize],
        written: StoreResult<Vec<Option<V>>>,
        answer: impl Fn(V) -> T,
    ) {
        match written {
            Ok(values) if values.len() == at.len() => {
                for (&i, value) in at.iter().zip(values) {
                    if let Some(v) = value {
                        self.0[i] = Some(Ok(answer(v)));
                    }
                }
            }
            Ok(_) => {}
            Err(e) => self.fail(at, &e),
        }
    }

    /// [`Answers::settle`] for a statement that answers whether each write was made, the
    /// values having been made in memory before it (`made`, in the order of `at`).
    pub(crate) fn settle_made<V>(
        &mut self,
        at: &[usize],
        written: StoreResult<Vec<bool>>,
        made: impl IntoIterator<Item = V>,
        answer: impl Fn(V) -> T,
    ) {
        let written = written.map(|flags| {
            flags
                .into_iter()
                .zip(made)
                .map(|(wrote, v)| wrote.then_some(v))
                .collect()
        });
        self.settle(at, written, answer);
    }

    /// A statement that failed: with the database away, each of its writes is answered with
    /// the fault; otherwise (a key taken meanwhile, a constraint) they are made alone.
    pub(crate) fn fail(&mut self, at: &[usize], e: &StoreError) {
        if e.copy_fault().is_some() {
            for &i in at {
                self.0[i] = e.copy_fault().map(|fault| Err(fault.into()));
            }
        } else {
            tracing::warn!(error = %e, writes = at.len(), "a write batch statement rolled back; writing one by one");
        }
    }

    /// Every answer, in order: the unsettled writes made alone by `alone`.
    pub(crate) fn finish<I>(
        self,
        batch: &[I],
        mut alone: impl FnMut(&I) -> ServiceResult<T>,
    ) -> Vec<ServiceResult<T>> {
        self.0
            .into_iter()
            .zip(batch)
            .map(|(answer, w)| answer.unwrap_or_else(|| alone(w)))
            .collect()
    }
}

/// Whether each write of `batch` goes through the batch statements: only the first write of
/// each resource (`key`; `None` names none, e.g. a create of a new one) does, since a second
/// one depends on the first; it runs alone after them.
pub(crate) fn firsts<I, K: Eq + Hash>(batch: &[I], key: impl Fn(&I) -> Option<K>) -> Vec<bool> {
    let mut seen = HashSet::new();
    batch
        .iter()
        .map(|w| key(w).is_none_or(|k| seen.insert(k)))
        .collect()
}

/// A write of a batch on one tenant's behalf.
pub(crate) trait OfTenant {
    /// The tenant.
    fn tenant_id(&self) -> TenantId;
}

/// The creates of a batch that its tenants' plans limit (channels, webhook endpoints), ready
/// for their one statement: the places in the batch of those taken, the store's items, and
/// what each made (answered once the statement wrote it).
pub(crate) struct LimitedCreates<I, M> {
    /// Where each taken create stands in the batch.
    pub(crate) taken: Vec<usize>,
    /// The store's items, in the order of `taken`.
    pub(crate) items: Vec<I>,
    /// What each made, in the order of `taken`.
    pub(crate) made: Vec<M>,
}

/// Prepares the creates `at` of `batch` whose tenants' plans limit them: the limits of their
/// tenants are read together ([`Plans::warm`]), and each create is given, through `prepare`,
/// its room (the tenant's `limit`, less the creates for the same tenant earlier in the batch);
/// `prepare` answers `None` for a write that is not such a create, or the item and what it
/// made (an error answers the write at once). A tenant whose limits could not be read (none,
/// or the batch's read failed) leaves its creates to be made alone.
pub(crate) fn limited_creates<W: OfTenant, I, M, T>(
    conn: &mut AnyConnection,
    plans: &Plans,
    batch: &[W],
    at: &[usize],
    answers: &mut Answers<T>,
    limit: impl Fn(&Limits) -> i64,
    mut prepare: impl FnMut(&W, i64) -> Option<ServiceResult<(I, M)>>,
) -> LimitedCreates<I, M> {
    let mut out = LimitedCreates {
        taken: Vec::with_capacity(at.len()),
        items: Vec::with_capacity(at.len()),
        made: Vec::with_capacity(at.len()),
    };
    let tenants: Vec<TenantId> = at.iter().map(|&i| batch[i].tenant_id()).collect();
    if let Err(e) = plans.warm(conn, &tenants) {
        // Each is checked again alone.
        tracing::debug!(error = %e, "plan limits of a create batch not read");
        return out;
    }
    let mut earlier: HashMap<TenantId, i64> = HashMap::new();
    for &i in at {
        let w = &batch[i];
        let tenant_id = w.tenant_id();
        // A tenant whose limits are not cached does not exist: answered alone.
        let Some(limits) = plans.cache.get(&tenant_id) else {
            continue;
        };
        let before = earlier.entry(tenant_id).or_default();
        match prepare(w, limit(&limits.limits) - *before) {
            None => {}
            Some(Ok((item, made))) => {
                *before += 1;
                out.taken.push(i);
                out.items.push(item);
                out.made.push(made);
            }
            Some(Err(e)) => answers.set(i, Err(e)),
        }
    }
    out
}
