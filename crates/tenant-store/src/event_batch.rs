//! Storing many events at once (group commit): the ingest path writes the events of concurrent
//! requests in one transaction, with what [`crate::events::ingest`] does for one event — the
//! event once per source id, its session, one delivery per subscribed endpoint (the outbox) —
//! for each of them.
//!
//! On PostgreSQL the whole batch is one statement ([`PG_STORE_MANY`]): a round trip per batch
//! instead of five or more per event, which is what the ingest path's CPU was spent on (see
//! `docs/benchmarks.md`). SQLite runs the portable per-event statements, which cost no round
//! trip there. Either way the batch commits as a whole or not at all, before anyone is told.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamp};
use tenant_core::TenantId;
use uuid::Uuid;

use crate::events::{Ingested, NewEvent};
use crate::pg_static::PgStatic;
use crate::schema::{events, tenants};
use crate::sessions::SessionSeen;
use crate::usage::MessageCounter;
use crate::{AnyConnection, StoreError, StoreResult, write_transaction};

/// One event of a batch, attributed to its tenant by the caller.
#[derive(Debug, Clone)]
pub struct EventToStore {
    /// The tenant the caller attributed it to (checked again here: it may have been deleted).
    pub tenant_id: TenantId,
    /// The event and its delivery body.
    pub event: NewEvent,
    /// The session it names, if any.
    pub session: Option<SessionSeen>,
    /// When it was received.
    pub at: DateTime<Utc>,
}

/// What storing a batch did: each event's outcome, and the usage counters it added to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredBatch {
    /// Each event's outcome, in the order of the batch.
    pub stored: Vec<Stored>,
    /// The counter of each (tenant, month) the batch's new messages were added to, as the
    /// batch left it: on PostgreSQL returned by the batch statement's upsert, on SQLite read
    /// back in the batch's transaction ([`MessageSums::write`]). The count includes every
    /// addition committed before (other batches, other replicas), and the marks are as they
    /// were then. A tenant with no new message in the batch (duplicates only, or no message
    /// event) has none. The quotas are judged from these, without a read after the batch.
    pub counters: Vec<MessageCounter>,
}

/// What storing one event of a batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Stored (or a duplicate), as [`crate::events::ingest`] answers.
    Done(Ingested),
    /// The tenant does not exist (any more): nothing was stored. The caller's attribution was
    /// stale; it may resolve the event again.
    NoTenant,
}

/// The batch in one statement. Every input row comes back once, in no particular order, with
/// whether its tenant exists (and is not deleted: a deleted tenant's rows wait for the purge),
/// whether its event was inserted (not a duplicate) and how many deliveries were enqueued for
/// it; after them, one row per usage counter the batch added to (`period` not null: `id` is
/// then the tenant's, and the counter's columns are as the upsert left them). Endpoints are matched in the statement itself (enabled, and `event_types` empty or
/// containing the type, as `Endpoint::wants`), so a change to an endpoint committed on any
/// replica applies to the next batch: there is no endpoint cache to invalidate.
/// Sessions: one upsert per (tenant, key) of the inserted events, keeping the latest activity.
/// Usage: one upsert per (tenant, month) of the inserted message events (see [`crate::usage`];
/// the types are [`crate::usage::METERED_EVENT_TYPES`]), so a duplicate never counts.
const PG_STORE_MANY: &str = "\
WITH input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $7::timestamp[], $8::text[], $9::text[], $10::text[], $11::text[])
        WITH ORDINALITY
        AS i(id, tenant_id, source, source_id, event_type, payload, at,
             session_key, channel, peer_id, chat_type, ord)
), ins AS (
    INSERT INTO events (id, tenant_id, source, source_id, event_type, payload, created_at)
    SELECT i.id, i.tenant_id, i.source, i.source_id, i.event_type, i.payload, i.at
    FROM input i
    WHERE EXISTS (SELECT 1 FROM tenants t WHERE t.id = i.tenant_id AND t.deleted_at IS NULL)
    -- In input order, so that of two events with one source id in a batch the first is kept.
    ORDER BY i.ord
    ON CONFLICT (source, source_id) DO NOTHING
    RETURNING id, tenant_id, event_type, created_at
), deliveries AS (
    INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_id, status, attempts,
                                    next_attempt_at, created_at, updated_at)
    SELECT gen_random_uuid()::text, ins.tenant_id, e.id, ins.id, 'pending', 0,
           ins.created_at, ins.created_at, ins.created_at
    FROM ins JOIN webhook_endpoints e ON e.tenant_id = ins.tenant_id
    WHERE e.enabled
      AND (e.event_types = '[]' OR e.event_types::jsonb @> jsonb_build_array(ins.event_type))
    RETURNING event_id
), touched AS (
    INSERT INTO sessions (id, tenant_id, session_key, channel, peer_id, chat_type, created_at,
                          last_activity_at)
    SELECT DISTINCT ON (i.tenant_id, i.session_key)
           gen_random_uuid()::text, i.tenant_id, i.session_key, i.channel, i.peer_id,
           i.chat_type, i.at, i.at
    FROM input i JOIN ins ON ins.id = i.id
    WHERE i.session_key IS NOT NULL
    ORDER BY i.tenant_id, i.session_key, i.at DESC
    ON CONFLICT (tenant_id, session_key) DO UPDATE
        SET last_activity_at = GREATEST(sessions.last_activity_at, EXCLUDED.last_activity_at)
), metered AS (
    INSERT INTO usage_counters (tenant_id, period, messages, api_requests)
    SELECT ins.tenant_id, to_char(ins.created_at, 'YYYY-MM'), count(*), 0
    FROM ins
    WHERE ins.event_type IN ('message.received', 'message.sent')
    GROUP BY 1, 2
    ON CONFLICT (tenant_id, period) DO UPDATE
        SET messages = usage_counters.messages + EXCLUDED.messages
    RETURNING tenant_id, period, messages, threshold_notified_at, exceeded_at
)
SELECT i.id,
       EXISTS (SELECT 1 FROM tenants t WHERE t.id = i.tenant_id AND t.deleted_at IS NULL) AS known,
       (ins.id IS NOT NULL) AS inserted,
       (SELECT count(*) FROM deliveries d WHERE d.event_id = i.id) AS deliveries,
       NULL::text AS period, NULL::bigint AS messages,
       NULL::boolean AS threshold_notified, NULL::boolean AS exceeded
FROM input i LEFT JOIN ins ON ins.id = i.id
UNION ALL
SELECT m.tenant_id, true, false, 0, m.period, m.messages,
       m.threshold_notified_at IS NOT NULL, m.exceeded_at IS NOT NULL
FROM metered m";

/// The id of the batch statement in Diesel's statement cache.
struct StoreManyStatement;

#[derive(QueryableByName)]
struct StoredRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Bool)]
    known: bool,
    #[diesel(sql_type = Bool)]
    inserted: bool,
    #[diesel(sql_type = BigInt)]
    deliveries: i64,
    /// Set on the rows of the usage counters (then `id` is the tenant's), null on the events'.
    #[diesel(sql_type = Nullable<Text>)]
    period: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    messages: Option<i64>,
    /// Whether the counter's soft-limit mark is set (null on the events' rows).
    #[diesel(sql_type = Nullable<Bool>)]
    threshold_notified: Option<bool>,
    /// Whether the counter's hard-limit mark is set (null on the events' rows).
    #[diesel(sql_type = Nullable<Bool>)]
    exceeded: Option<bool>,
}

/// Stores a batch of events, each as [`crate::events::ingest`] would, and answers for each in
/// order, with the usage counters the batch added to ([`StoredBatch`]). Atomic by itself: on PostgreSQL one statement (no `BEGIN`/`COMMIT` round trips), on
/// SQLite one write transaction (a savepoint inside the caller's, if any). An `Err` means
/// nothing of the batch was stored; the caller may then store the events one by one to find
/// the one at fault.
pub fn store_many(conn: &mut AnyConnection, items: &[EventToStore]) -> StoreResult<StoredBatch> {
    if items.is_empty() {
        return Ok(StoredBatch::default());
    }
    let rows = match conn {
        AnyConnection::Postgresql(pg) => pg_store_many(pg, items)?,
        AnyConnection::Sqlite(_) => {
            return write_transaction(conn, |c| {
                let mut usage = MessageSums::default();
                let stored = items
                    .iter()
                    .map(|i| {
                        let stored = store_one_portable(c, i)?;
                        if let Stored::Done(Ingested::Accepted { .. }) = stored {
                            usage.add(i);
                        }
                        Ok(stored)
                    })
                    .collect::<StoreResult<Vec<_>>>()?;
                let counters = usage.write(c)?;
                Ok(StoredBatch { stored, counters })
            });
        }
    };
    let mut counters = Vec::new();
    let mut by_id: HashMap<String, StoredRow> = HashMap::with_capacity(rows.len());
    for r in rows {
        match r.period {
            Some(period) => {
                // A tenant id that is no UUID could not be judged (nor stored).
                if let Ok(tenant_id) = r.id.parse::<TenantId>() {
                    counters.push(MessageCounter {
                        tenant_id,
                        period,
                        messages: r.messages.unwrap_or(0),
                        threshold_notified: r.threshold_notified.unwrap_or(false),
                        exceeded: r.exceeded.unwrap_or(false),
                    });
                }
            }
            None => {
                by_id.insert(r.id.clone(), r);
            }
        }
    }
    let mut out = Vec::with_capacity(items.len());
    let mut duplicates: Vec<usize> = Vec::new();
    for (k, item) in items.iter().enumerate() {
        let id = item.event.id.to_string();
        let row = by_id.get(&id).ok_or_else(|| StoreError::Corrupt {
            table: "events",
            id,
            reason: "missing from the answer of the batch statement".into(),
        })?;
        out.push(if !row.known {
            Stored::NoTenant
        } else if row.inserted {
            Stored::Done(Ingested::Accepted {
                event_id: item.event.id,
                deliveries: usize::try_from(row.deliveries).unwrap_or(0),
            })
        } else {
            // Filled in below, once the earlier events are looked up.
            duplicates.push(k);
            Stored::NoTenant
        });
    }
    if !duplicates.is_empty() {
        let found = earlier_events(conn, duplicates.iter().map(|&k| &items[k].event))?;
        for k in duplicates {
            let e = &items[k].event;
            let id = found
                .get(&(e.source.clone(), e.source_id.clone()))
                .copied()
                .ok_or_else(|| StoreError::Corrupt {
                    table: "events",
                    id: e.id.to_string(),
                    reason: "neither inserted nor an earlier event's duplicate".into(),
                })?;
            out[k] = Stored::Done(Ingested::Duplicate { event_id: id });
        }
    }
    Ok(StoredBatch {
        stored: out,
        counters,
    })
}

/// Runs [`PG_STORE_MANY`]: the named function holding this module's PostgreSQL-only SQL.
fn pg_store_many(conn: &mut PgConnection, items: &[EventToStore]) -> QueryResult<Vec<StoredRow>> {
    let ids: Vec<String> = items.iter().map(|i| i.event.id.to_string()).collect();
    let tenants: Vec<String> = items.iter().map(|i| i.tenant_id.to_string()).collect();
    let text = |f: fn(&EventToStore) -> &str| items.iter().map(f).collect::<Vec<_>>();
    let session = |f: fn(&SessionSeen) -> Option<&str>| {
        items
            .iter()
            .map(|i| i.session.as_ref().and_then(f))
            .collect::<Vec<_>>()
    };
    let at: Vec<NaiveDateTime> = items.iter().map(|i| i.at.naive_utc()).collect();
    PgStatic::<StoreManyStatement>::new(PG_STORE_MANY)
        .bind::<Array<Text>, _>(ids)
        .bind::<Array<Text>, _>(tenants)
        .bind::<Array<Text>, _>(text(|i| &i.event.source))
        .bind::<Array<Text>, _>(text(|i| &i.event.source_id))
        .bind::<Array<Text>, _>(text(|i| &i.event.event_type))
        .bind::<Array<Text>, _>(text(|i| &i.event.payload))
        .bind::<Array<Timestamp>, _>(at)
        .bind::<Array<Nullable<Text>>, _>(session(|s| Some(&s.session_key)))
        .bind::<Array<Nullable<Text>>, _>(session(|s| Some(&s.channel)))
        .bind::<Array<Nullable<Text>>, _>(session(|s| s.peer_id.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(session(|s| Some(&s.chat_type)))
        .load(conn)
}

/// The ids of earlier events with these events' source ids (one query per distinct source).
fn earlier_events<'a>(
    conn: &mut AnyConnection,
    events: impl Iterator<Item = &'a NewEvent>,
) -> StoreResult<HashMap<(String, String), Uuid>> {
    let mut by_source: HashMap<&str, Vec<&str>> = HashMap::new();
    for e in events {
        by_source.entry(&e.source).or_default().push(&e.source_id);
    }
    let mut found = HashMap::new();
    for (source, ids) in by_source {
        let rows: Vec<(String, String)> = events::table
            .filter(events::source.eq(source))
            .filter(events::source_id.eq_any(&ids))
            .select((events::source_id, events::id))
            .load(conn)?;
        for (source_id, id) in rows {
            let id = Uuid::parse_str(&id).map_err(|e| StoreError::Corrupt {
                table: "events",
                id: id.clone(),
                reason: e.to_string(),
            })?;
            found.insert((source.to_owned(), source_id), id);
        }
    }
    Ok(found)
}

/// The tenants with any of these ids, gateway account ids or agent ids, as `(id, account id,
/// agent id)`: how ingest attributes a batch of events with one query.
pub fn tenants_named(
    conn: &mut AnyConnection,
    ids: &[TenantId],
    accounts: &[&str],
    agents: &[&str],
) -> StoreResult<Vec<(TenantId, String, String)>> {
    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let rows: Vec<(String, String, String)> = tenants::table
        .filter(
            tenants::id
                .eq_any(&ids)
                .or(tenants::account_id.eq_any(accounts))
                .or(tenants::agent_id.eq_any(agents)),
        )
        .filter(tenants::deleted_at.is_null())
        .select((tenants::id, tenants::account_id, tenants::agent_id))
        .load(conn)?;
    rows.into_iter()
        .map(|(id, account, agent)| Ok((crate::tenants::stored_id(id)?, account, agent)))
        .collect()
}

/// One event with the portable statements (SQLite, where a statement costs no round trip),
/// its usage left to the batch's [`MessageSums`].
fn store_one_portable(conn: &mut AnyConnection, item: &EventToStore) -> StoreResult<Stored> {
    if !crate::tenants::exists(conn, &item.tenant_id)? {
        return Ok(Stored::NoTenant);
    }
    crate::events::ingest_metered(
        conn,
        &item.tenant_id,
        &item.event,
        item.session.as_ref(),
        item.at,
        false,
    )
    .map(Stored::Done)
}

/// The newly stored messages of a SQLite batch, summed per tenant and month and added with
/// one counter upsert each at the end of the batch's transaction, then read back together (instead of one per event; as
/// PostgreSQL's batch statement does). Only events that were inserted are added, so a
/// duplicate event id still never counts. A batch holds a few tenants: a list searched in
/// order beats a map.
#[derive(Debug, Default)]
struct MessageSums(Vec<MessageSum>);

/// A tenant's new messages of one month in a batch.
#[derive(Debug)]
struct MessageSum {
    tenant_id: TenantId,
    /// Year and month (UTC).
    month: (i32, u32),
    /// When the first of them was received (its month is `month`).
    at: DateTime<Utc>,
    messages: i64,
}

impl MessageSums {
    /// Counts `item`, just stored, if it is a message.
    fn add(&mut self, item: &EventToStore) {
        use chrono::Datelike as _;
        if !crate::usage::is_metered(&item.event.event_type) {
            return;
        }
        let month = (item.at.year(), item.at.month());
        match self
            .0
            .iter_mut()
            .find(|s| s.tenant_id == item.tenant_id && s.month == month)
        {
            Some(sum) => sum.messages += 1,
            None => self.0.push(MessageSum {
                tenant_id: item.tenant_id,
                month,
                at: item.at,
                messages: 1,
            }),
        }
    }

    /// Adds the sums to the usage counters (inside the batch's transaction) and answers the
    /// counters as the additions left them: read back in the same transaction, one statement
    /// per month (SQLite holds one writer at a time, so nothing else changed them meanwhile).
    /// One read per batch costs less than `RETURNING` on each upsert (docs/benchmarks.md); it
    /// reads only what judging the quotas needs ([`crate::usage::counters_in_period`]).
    fn write(&self, conn: &mut AnyConnection) -> StoreResult<Vec<MessageCounter>> {
        let mut months: Vec<(String, Vec<TenantId>)> = Vec::new();
        for s in &self.0 {
            let period = crate::usage::period_of(s.at);
            crate::usage::add_messages(conn, &s.tenant_id, &period, s.messages)?;
            match months.iter_mut().find(|(p, _)| *p == period) {
                Some((_, tenants)) => tenants.push(s.tenant_id),
                None => months.push((period, vec![s.tenant_id])),
            }
        }
        let mut counters = Vec::with_capacity(self.0.len());
        for (period, tenants) in &months {
            counters.extend(crate::usage::counters_in_period(conn, period, tenants)?);
        }
        Ok(counters)
    }
}
