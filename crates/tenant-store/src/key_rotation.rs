//! Re-sealing secrets at rest under the key ring's active key — channel credentials and webhook
//! signing secrets: after a new key is put first in the ring, and for plaintext rows left by
//! versions before encryption at rest.
//!
//! Work goes batch by batch, each batch in its own transaction. A row is rewritten only if its
//! stored ciphertext is still the one that was read (compare-and-swap), so a concurrent API
//! update, which seals under the active key itself, is never overwritten. The rows to do are
//! found through the key-id indexes (`credentials_key_id`, `secret_key_id`), so an interrupted
//! rotation simply continues when run again. The plaintext does not change, so the
//! gateway-config revision is not bumped.

use diesel::prelude::*;

use crate::channels::ChannelRow;
use crate::crypto::KeyRing;
use crate::schema::{channels, webhook_endpoints};
use crate::webhook_secrets::{self, StoredSecret};
use crate::{AnyConnection, StoreResult, write_transaction};

/// Which rows a batch takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every row not sealed under the active key (a rotation).
    NotActive,
    /// Only legacy plaintext rows (what a start seals).
    Plaintext,
}

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Rows read.
    pub selected: usize,
    /// Rows re-sealed under the active key.
    pub resealed: usize,
    /// Rows changed (or deleted) concurrently, left as the other writer made them.
    pub skipped: usize,
}

/// How many sealed rows (channels and webhook endpoints) are under which key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyUsage {
    /// Rows sealed under the active key.
    pub active: i64,
    /// Rows sealed under another key, by key id (ascending).
    pub other: Vec<(String, i64)>,
    /// Legacy plaintext rows.
    pub plaintext: i64,
}

impl KeyUsage {
    /// Rows a rotation still has to re-seal.
    pub fn pending(&self) -> i64 {
        self.plaintext + self.other.iter().map(|(_, n)| n).sum::<i64>()
    }
}

/// Counts sealed rows (channels and webhook endpoints) by the key that sealed them.
pub fn usage(conn: &mut AnyConnection, ring: &KeyRing) -> StoreResult<KeyUsage> {
    let mut counts: Vec<(Option<String>, i64)> = channels::table
        .group_by(channels::credentials_key_id)
        .select((channels::credentials_key_id, diesel::dsl::count_star()))
        .load(conn)?;
    counts.extend(
        webhook_endpoints::table
            .group_by(webhook_endpoints::secret_key_id)
            .select((webhook_endpoints::secret_key_id, diesel::dsl::count_star()))
            .load::<(Option<String>, i64)>(conn)?,
    );
    let mut usage = KeyUsage::default();
    for (key, n) in counts {
        match key {
            None => usage.plaintext += n,
            Some(k) if k == ring.active_id() => usage.active += n,
            Some(k) => match usage.other.iter_mut().find(|(id, _)| *id == k) {
                Some((_, total)) => *total += n,
                None => usage.other.push((k, n)),
            },
        }
    }
    usage.other.sort();
    Ok(usage)
}

/// Re-seals up to `limit` channel rows and up to `limit` webhook endpoint rows of `scope` under
/// the active key, in one transaction. Fails, naming the row, on one the ring cannot open
/// (nothing of that batch is written).
pub fn reseal_batch(
    conn: &mut AnyConnection,
    ring: &KeyRing,
    scope: Scope,
    limit: i64,
) -> StoreResult<BatchOutcome> {
    write_transaction(conn, |c| {
        let mut outcome = reseal_channels(c, ring, scope, limit)?;
        let endpoints = reseal_endpoints(c, ring, scope, limit)?;
        outcome.selected += endpoints.selected;
        outcome.resealed += endpoints.resealed;
        outcome.skipped += endpoints.skipped;
        Ok(outcome)
    })
}

fn reseal_channels(
    c: &mut AnyConnection,
    ring: &KeyRing,
    scope: Scope,
    limit: i64,
) -> StoreResult<BatchOutcome> {
    let mut query = channels::table
        .select(ChannelRow::as_select())
        .order(channels::id.asc())
        .limit(limit.max(1))
        .into_boxed();
    query = match scope {
        Scope::Plaintext => query.filter(channels::credentials_key_id.is_null()),
        Scope::NotActive => query.filter(
            channels::credentials_key_id
                .is_null()
                .or(channels::credentials_key_id.ne(ring.active_id())),
        ),
    };
    let rows: Vec<ChannelRow> = query.load(c)?;
    let mut outcome = BatchOutcome {
        selected: rows.len(),
        ..BatchOutcome::default()
    };
    for row in rows {
        let channel = row.clone().open(ring)?;
        let sealed = ChannelRow::seal(&channel, ring)?;
        let n = diesel::update(
            channels::table
                .filter(channels::id.eq(&row.id))
                .filter(channels::credentials.eq(&row.credentials)),
        )
        .set((
            channels::credentials.eq(&sealed.credentials),
            channels::credentials_key_id.eq(&sealed.credentials_key_id),
        ))
        .execute(c)?;
        outcome.count(n);
    }
    Ok(outcome)
}

fn reseal_endpoints(
    c: &mut AnyConnection,
    ring: &KeyRing,
    scope: Scope,
    limit: i64,
) -> StoreResult<BatchOutcome> {
    let mut query = webhook_endpoints::table
        .select((
            webhook_endpoints::id,
            webhook_endpoints::tenant_id,
            webhook_endpoints::secret,
            webhook_endpoints::secret_key_id,
        ))
        .order(webhook_endpoints::id.asc())
        .limit(limit.max(1))
        .into_boxed();
    query = match scope {
        Scope::Plaintext => query.filter(webhook_endpoints::secret_key_id.is_null()),
        Scope::NotActive => query.filter(
            webhook_endpoints::secret_key_id
                .is_null()
                .or(webhook_endpoints::secret_key_id.ne(ring.active_id())),
        ),
    };
    let rows: Vec<(String, Option<String>, String, Option<String>)> = query.load(c)?;
    let mut outcome = BatchOutcome {
        selected: rows.len(),
        ..BatchOutcome::default()
    };
    for (id, tenant_id, value, key_id) in rows {
        let tenant_id = webhook_secrets::owner(tenant_id.as_deref());
        let stored = StoredSecret { value, key_id };
        let plaintext = webhook_secrets::open(ring, tenant_id, &id, &stored)?;
        let sealed = webhook_secrets::seal(ring, tenant_id, &id, &plaintext)?;
        let n = diesel::update(
            webhook_endpoints::table
                .filter(webhook_endpoints::id.eq(&id))
                .filter(webhook_endpoints::secret.eq(&stored.value)),
        )
        .set((
            webhook_endpoints::secret.eq(&sealed.value),
            webhook_endpoints::secret_key_id.eq(&sealed.key_id),
        ))
        .execute(c)?;
        outcome.count(n);
    }
    Ok(outcome)
}

impl BatchOutcome {
    fn count(&mut self, updated: usize) {
        if updated == 1 {
            self.resealed += 1;
        } else {
            self.skipped += 1;
        }
    }
}

/// Runs batches of `scope` until none is left, calling `progress` after each with the batch's
/// outcome and the running total of re-sealed rows. Returns the totals.
pub fn reseal_all(
    conn: &mut AnyConnection,
    ring: &KeyRing,
    scope: Scope,
    batch_size: i64,
    mut progress: impl FnMut(&BatchOutcome, usize),
) -> StoreResult<BatchOutcome> {
    let mut total = BatchOutcome::default();
    loop {
        let batch = reseal_batch(conn, ring, scope, batch_size)?;
        total.selected += batch.selected;
        total.resealed += batch.resealed;
        total.skipped += batch.skipped;
        if batch.selected == 0 {
            return Ok(total);
        }
        progress(&batch, total.resealed);
        // A batch of only skipped rows made no progress of its own; the concurrent writers
        // sealed those rows under the active key, so the next query no longer returns them.
    }
}
