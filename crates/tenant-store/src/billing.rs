//! Stripe billing as stored: a tenant's billing row (its customer, the subscription deciding its
//! plan, its billing state) and the ids of the Stripe events applied, each claimed once in the
//! transaction that applies it. The rules (what an event changes) are `tenant-service`'s.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use tenant_core::TenantId;

use crate::schema::{stripe_events, tenant_billing};
use crate::{AnyConnection, StoreResult};

/// A tenant's billing row. Times are UTC; the subscription's times are Stripe's.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = tenant_billing, treat_none_as_null = true)]
pub struct BillingRow {
    /// The tenant.
    pub tenant_id: String,
    /// Its Stripe customer (`cus_…`), once created.
    pub customer_id: Option<String>,
    /// The subscription that decides its plan (`sub_…`).
    pub subscription_id: Option<String>,
    /// That subscription's Stripe status (`active`, `past_due`, `canceled`, …).
    pub subscription_status: Option<String>,
    /// When that subscription was created (a newer subscription replaces an older one).
    pub subscription_created: Option<NaiveDateTime>,
    /// The price it is for.
    pub price_id: Option<String>,
    /// The billing state: `none`, `incomplete`, `active`, `past_due`, `suspended`, `canceled`.
    pub state: String,
    /// The end of the period paid for.
    pub current_period_end: Option<NaiveDateTime>,
    /// Stripe's time of the subscription event last applied: an older one changes nothing.
    pub status_at: Option<NaiveDateTime>,
    /// When a payment first failed (the grace period runs from here); cleared when paid.
    pub past_due_since: Option<NaiveDateTime>,
    /// Stripe's time of the latest paid invoice applied.
    pub paid_at: Option<NaiveDateTime>,
    /// When billing suspended the tenant (its grace ran out); cleared when restored.
    pub suspended_at: Option<NaiveDateTime>,
    /// When the row last changed.
    pub updated_at: NaiveDateTime,
}

impl BillingRow {
    /// A fresh row for a tenant that has not subscribed.
    pub fn new(tenant_id: &TenantId, now: DateTime<Utc>) -> Self {
        Self {
            tenant_id: tenant_id.to_string(),
            customer_id: None,
            subscription_id: None,
            subscription_status: None,
            subscription_created: None,
            price_id: None,
            state: "none".to_owned(),
            current_period_end: None,
            status_at: None,
            past_due_since: None,
            paid_at: None,
            suspended_at: None,
            updated_at: now.naive_utc(),
        }
    }
}

/// A tenant's billing row, if it has one.
pub fn find(conn: &mut AnyConnection, tenant_id: &TenantId) -> StoreResult<Option<BillingRow>> {
    Ok(tenant_billing::table
        .find(tenant_id.to_string())
        .select(BillingRow::as_select())
        .first(conn)
        .optional()?)
}

/// A tenant's billing row, created (fresh) if it has none, and locked for the rest of the
/// transaction on PostgreSQL (`FOR UPDATE`; SQLite's write transaction holds the database's
/// lock already): two events of one tenant, or an event and the sweep, apply one after the
/// other instead of overwriting each other. Call inside a write transaction.
pub fn lock_or_create(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    now: DateTime<Utc>,
) -> StoreResult<BillingRow> {
    let fresh = BillingRow::new(tenant_id, now);
    macro_rules! insert_new {
        ($conn:expr) => {
            diesel::insert_into(tenant_billing::table)
                .values(&fresh)
                .on_conflict(tenant_billing::tenant_id)
                .do_nothing()
                .execute($conn)?
        };
    }
    match conn {
        AnyConnection::Postgresql(pg) => {
            insert_new!(pg);
            Ok(tenant_billing::table
                .find(&fresh.tenant_id)
                .select(BillingRow::as_select())
                .for_update()
                .first(pg)?)
        }
        AnyConnection::Sqlite(lite) => {
            insert_new!(lite);
            Ok(tenant_billing::table
                .find(&fresh.tenant_id)
                .select(BillingRow::as_select())
                .first(lite)?)
        }
    }
}

/// The billing row of a Stripe customer, if a tenant has it.
pub fn find_by_customer(
    conn: &mut AnyConnection,
    customer_id: &str,
) -> StoreResult<Option<BillingRow>> {
    Ok(tenant_billing::table
        .filter(tenant_billing::customer_id.eq(customer_id))
        .select(BillingRow::as_select())
        .first(conn)
        .optional()?)
}

/// Writes a tenant's billing row (inserted, or replacing the one it has).
pub fn save(conn: &mut AnyConnection, row: &BillingRow) -> StoreResult<()> {
    let updated = diesel::update(tenant_billing::table.find(&row.tenant_id))
        .set(row)
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(tenant_billing::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// Records a tenant's Stripe customer unless it already has one; returns the one it has now
/// (the first stored wins, so two racing requests end up with the same customer).
pub fn set_customer(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    customer_id: &str,
    now: DateTime<Utc>,
) -> StoreResult<String> {
    crate::write_transaction(conn, |c| {
        let mut row = lock_or_create(c, tenant_id, now)?;
        if let Some(existing) = &row.customer_id {
            return Ok(existing.clone());
        }
        row.customer_id = Some(customer_id.to_owned());
        row.updated_at = now.naive_utc();
        save(c, &row)?;
        Ok(customer_id.to_owned())
    })
}

/// Claims a Stripe event: `true` if its id was not seen before (it is now recorded), `false`
/// for a replay. Call in the transaction that applies the event, so the claim and the effect
/// commit together.
pub fn claim_event(
    conn: &mut AnyConnection,
    event_id: &str,
    event_type: &str,
    tenant_id: Option<&TenantId>,
    created: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    macro_rules! insert_new {
        ($conn:expr) => {
            diesel::insert_into(stripe_events::table)
                .values((
                    stripe_events::id.eq(event_id),
                    stripe_events::event_type.eq(event_type),
                    stripe_events::tenant_id.eq(tenant_id.map(ToString::to_string)),
                    stripe_events::created_at.eq(created.naive_utc()),
                    stripe_events::received_at.eq(now.naive_utc()),
                ))
                .on_conflict(stripe_events::id)
                .do_nothing()
                .execute($conn)?
        };
    }
    let inserted = match conn {
        AnyConnection::Postgresql(pg) => insert_new!(pg),
        AnyConnection::Sqlite(lite) => insert_new!(lite),
    };
    Ok(inserted == 1)
}

/// Whether a Stripe event was applied.
pub fn event_seen(conn: &mut AnyConnection, event_id: &str) -> StoreResult<bool> {
    Ok(stripe_events::table
        .find(event_id)
        .count()
        .get_result::<i64>(conn)?
        > 0)
}

/// The tenants past due since `before` or earlier and not yet suspended: their grace ran out.
pub fn overdue(conn: &mut AnyConnection, before: DateTime<Utc>) -> StoreResult<Vec<BillingRow>> {
    Ok(tenant_billing::table
        .filter(tenant_billing::past_due_since.le(before.naive_utc()))
        .filter(tenant_billing::suspended_at.is_null())
        .select(BillingRow::as_select())
        .load(conn)?)
}

/// Removes the records of Stripe events received before `before` (Stripe stops retrying an
/// event after three days; the records are kept longer than that). Returns how many went.
pub fn purge_events(conn: &mut AnyConnection, before: DateTime<Utc>) -> StoreResult<usize> {
    Ok(diesel::delete(
        stripe_events::table.filter(stripe_events::received_at.lt(before.naive_utc())),
    )
    .execute(conn)?)
}
