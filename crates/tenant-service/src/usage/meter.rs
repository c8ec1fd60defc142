//! API requests per tenant, counted in memory on the request path (one lock, one hash-map
//! increment) and added to the store's counters by a periodic flush (and a last one on
//! shutdown): a database write per request would cost more than the request. Each replica adds
//! its own counts with an upsert (`count = count + n`), so replicas add up exactly. Requests are
//! counted in the month of the flush that stores them.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tenant_core::TenantId;
use tenant_store::{Database, usage};

use crate::error::ServiceResult;

/// The API requests not yet flushed, per tenant.
#[derive(Debug, Default)]
pub struct UsageMeter {
    pending: Mutex<HashMap<TenantId, i64>>,
}

impl UsageMeter {
    /// Counts one API request of `tenant_id`.
    pub fn count_request(&self, tenant_id: TenantId) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        *pending.entry(tenant_id).or_default() += 1;
    }

    /// This process's requests of `tenant_id` not yet flushed.
    pub fn unflushed(&self, tenant_id: &TenantId) -> i64 {
        let pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.get(tenant_id).copied().unwrap_or(0)
    }

    /// Adds the pending counts to the store (blocking: call on the blocking pool). On failure
    /// they are put back, to be added by the next flush.
    pub fn flush(&self, db: &Database) -> ServiceResult<usize> {
        let taken = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::take(&mut *pending)
        };
        if taken.is_empty() {
            return Ok(0);
        }
        let period = usage::period_of(tenant_core::now());
        let counts: Vec<(TenantId, String, i64)> = taken
            .iter()
            .map(|(t, n)| (*t, period.clone(), *n))
            .collect();
        let stored = db
            .get()
            .and_then(|mut conn| usage::add_api_requests(&mut conn, &counts));
        if let Err(e) = stored {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            for (t, n) in taken {
                *pending.entry(t).or_default() += n;
            }
            return Err(e.into());
        }
        Ok(counts.len())
    }
}
