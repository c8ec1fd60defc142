//! Re-sealing channel credentials under the key ring's active key: after a new key is put first
//! in the ring, and for plaintext rows left by versions before encryption at rest.
//!
//! Work goes batch by batch, each batch in its own transaction. A row is rewritten only if its
//! stored ciphertext is still the one that was read (compare-and-swap), so a concurrent API
//! update, which seals under the active key itself, is never overwritten. The rows to do are
//! found through the `credentials_key_id` index, so an interrupted rotation simply continues
//! when run again. The plaintext does not change, so the gateway-config revision is not bumped.

use diesel::prelude::*;

use crate::channels::ChannelRow;
use crate::crypto::KeyRing;
use crate::schema::channels;
use crate::{AnyConnection, StoreResult};

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

/// How many rows are under which key.
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

/// Counts channel rows by the key that sealed them.
pub fn usage(conn: &mut AnyConnection, ring: &KeyRing) -> StoreResult<KeyUsage> {
    let counts: Vec<(Option<String>, i64)> = channels::table
        .group_by(channels::credentials_key_id)
        .select((channels::credentials_key_id, diesel::dsl::count_star()))
        .order(channels::credentials_key_id.asc())
        .load(conn)?;
    let mut usage = KeyUsage::default();
    for (key, n) in counts {
        match key {
            None => usage.plaintext += n,
            Some(k) if k == ring.active_id() => usage.active += n,
            Some(k) => usage.other.push((k, n)),
        }
    }
    Ok(usage)
}

/// Re-seals up to `limit` rows of `scope` under the active key, in one transaction. Fails, naming
/// the tenant and channel kind, on a row the ring cannot open (nothing of that batch is written).
pub fn reseal_batch(
    conn: &mut AnyConnection,
    ring: &KeyRing,
    scope: Scope,
    limit: i64,
) -> StoreResult<BatchOutcome> {
    conn.transaction(|c| {
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
            if n == 1 {
                outcome.resealed += 1;
            } else {
                outcome.skipped += 1;
            }
        }
        Ok(outcome)
    })
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
