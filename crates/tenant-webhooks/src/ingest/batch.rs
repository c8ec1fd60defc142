//! Group commit of ingest: the events of concurrent requests are attributed with at most one
//! query and stored with one statement, in one transaction, and each request is answered with
//! its own outcome once that transaction has committed.
//!
//! One event never fails the others: an event that cannot be attributed is answered 422 and
//! left out of the batch; if the batch's transaction fails as a whole (a deadlock, a constraint
//! or trigger refusing one row, a lost connection), it is rolled back and each of its events is
//! stored again alone, in its own transaction, so only the event at fault gets an error; if the
//! database as a whole failed (away, read-only, full), every event of the batch gets that error
//! at once. Nothing is acknowledged that was not committed.

use chrono::{DateTime, Utc};
use tenant_store::event_batch::{self, EventToStore, Stored};
use tenant_store::usage::MessageCounter;
use tenant_store::{AnyConnection, StoreError};

use super::attribute::{Resolution, attribute};
use super::{Accepted, IngestError, TenantLookup, ValidEvent, to_store};

/// What [`Ingestor::ingest_batch`] did: an answer per event, and the usage counters its stores
/// added to.
#[derive(Debug, Default)]
pub struct IngestedBatch {
    /// Each event's answer, in the order of the batch.
    pub answers: Vec<Result<Accepted, IngestError>>,
    /// The usage counters the batch's new messages were added to, as each store left them
    /// ([`tenant_store::event_batch::StoredBatch::counters`]). An event stored again alone
    /// (after the batch rolled back, or with a stale attribution) adds its own: one tenant's
    /// counter may then appear more than once, the later with the higher count.
    pub counters: Vec<MessageCounter>,
}

/// Attributes and stores gateway events in batches, sharing a [`TenantLookup`].
#[derive(Debug, Default)]
pub struct Ingestor {
    lookup: TenantLookup,
}

impl Ingestor {
    /// An ingestor with this cache of gateway ids.
    pub fn new(lookup: TenantLookup) -> Self {
        Self { lookup }
    }

    /// Attributes and stores a batch of validated events, each received at its time; answers
    /// for each, in order, with the usage counters the batch added to. The caller answers each
    /// request only with its entry of the result, which is known only once everything it
    /// reports was committed.
    pub fn ingest_batch(
        &self,
        conn: &mut AnyConnection,
        batch: &[(ValidEvent, DateTime<Utc>)],
    ) -> IngestedBatch {
        let mut out: Vec<Option<Result<Accepted, IngestError>>> =
            batch.iter().map(|_| None).collect();
        let mut again: Vec<usize> = Vec::new();
        let events: Vec<&ValidEvent> = batch.iter().map(|(e, _)| e).collect();
        let resolution = match self.lookup.resolve(conn, &events) {
            Ok(r) => r,
            Err(e) => {
                // The database is away, read-only or full: one by one would meet the same.
                if let Some(answers) = every(batch.len(), &e) {
                    return IngestedBatch {
                        answers,
                        counters: Vec::new(),
                    };
                }
                tracing::warn!(error = %e, events = batch.len(), "ingest batch: attribution failed; storing one by one");
                Resolution::default()
            }
        };
        let mut rows: Vec<EventToStore> = Vec::with_capacity(batch.len());
        let mut slots: Vec<usize> = Vec::with_capacity(batch.len());
        for (k, (event, at)) in batch.iter().enumerate() {
            match attribute(event, &resolution).and_then(|t| to_store(event, t, *at)) {
                Ok(row) => {
                    rows.push(row);
                    slots.push(k);
                }
                // Read again without the cache before answering 422: a cached id may be stale.
                Err(_) => again.push(k),
            }
        }
        let stored = if rows.is_empty() {
            Ok(event_batch::StoredBatch::default())
        } else {
            event_batch::store_many(conn, &rows)
        };
        let mut counters = Vec::new();
        match stored {
            Ok(stored) if stored.stored.len() == rows.len() => {
                counters = stored.counters;
                for ((k, row), s) in slots.iter().zip(&rows).zip(stored.stored) {
                    match s {
                        Stored::Done(ingested) => {
                            out[*k] = Some(Ok(Accepted {
                                tenant_id: row.tenant_id,
                                ingested,
                            }));
                        }
                        Stored::NoTenant => {
                            self.lookup.forget(&row.tenant_id);
                            again.push(*k);
                        }
                    }
                }
            }
            Err(e) if rows.len() == 1 => out[slots[0]] = Some(Err(e.into())),
            Err(e) if e.fault().is_some() => {
                for k in &slots {
                    out[*k] = e.copy_fault().map(|f| Err(IngestError::Store(f)));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, events = rows.len(), "ingest batch rolled back; storing its events one by one");
                again.extend(&slots);
            }
            Ok(stored) => {
                // What it counted stays counted: judged with the rest.
                counters = stored.counters;
                again.extend(&slots);
            }
        }
        for k in again {
            let (event, at) = &batch[k];
            out[k] = Some(ingest_one_fresh(
                conn,
                Some(&self.lookup),
                event,
                *at,
                &mut counters,
            ));
        }
        let answers = out
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(IngestError::Store(StoreError::Corrupt {
                        table: "events",
                        id: String::new(),
                        reason: "no outcome for an event of the batch".into(),
                    }))
                })
            })
            .collect();
        IngestedBatch { answers, counters }
    }
}

/// `n` copies of `e` as answers when it is a fault of the database as a whole (which every
/// event of the batch would meet), else `None`.
fn every(n: usize, e: &StoreError) -> Option<Vec<Result<Accepted, IngestError>>> {
    (0..n)
        .map(|_| e.copy_fault().map(|f| Err(IngestError::Store(f))))
        .collect()
}

/// One event, attributed from the database (not the cache) and stored in its own transaction;
/// the usage counter it added to, if any, is pushed onto `counters`.
pub(crate) fn ingest_one_fresh(
    conn: &mut AnyConnection,
    lookup: Option<&TenantLookup>,
    event: &ValidEvent,
    at: DateTime<Utc>,
    counters: &mut Vec<MessageCounter>,
) -> Result<Accepted, IngestError> {
    let resolution = TenantLookup::resolve_fresh(lookup, conn, event)?;
    let tenant = attribute(event, &resolution)?;
    let row = to_store(event, tenant, at)?;
    let stored = event_batch::store_many(conn, std::slice::from_ref(&row))?;
    counters.extend(stored.counters);
    match stored.stored.first() {
        Some(Stored::Done(ingested)) => Ok(Accepted {
            tenant_id: tenant,
            ingested: *ingested,
        }),
        // Deleted between the read above and the write.
        _ => Err(IngestError::Unresolved {
            fields: named_fields(event),
            message: "the tenant the event names was deleted".into(),
        }),
    }
}

/// The identifier fields an event names.
fn named_fields(e: &ValidEvent) -> Vec<&'static str> {
    let input = &e.input;
    [
        ("tenantId", input.tenant_id.is_some()),
        ("accountId", input.account_id.is_some()),
        ("agentId", input.agent_id.is_some()),
        ("sessionKey", input.session_key.is_some()),
    ]
    .into_iter()
    .filter(|(_, named)| *named)
    .map(|(f, _)| f)
    .collect()
}
