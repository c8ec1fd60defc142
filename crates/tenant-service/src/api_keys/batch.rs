//! API keys issued by concurrent requests as one batch (group commit, [`crate::group_commit`]),
//! as channel writes are (`crate::write_batch`): each key generated and hashed, its
//! `key.created` audit row and `Idempotency-Key` row built, then the batch's keys stored in one
//! statement (`tenant_store::key_batch`). A key whose tenant does not exist is issued again
//! alone ([`issue::create_key`]), which answers it as before (404).

use tenant_core::TenantId;
use tenant_store::AnyConnection;
use tenant_store::audit::AuditContext;
use tenant_store::key_batch::{self, KeyToIssue};

use super::ApiKeyHasher;
use super::issue::{self, IssuedKey, KeySpec};
use crate::error::ServiceResult;
use crate::idempotency::{Ticket, within};
use crate::write_batch::Answers;

/// One key to issue: who asks, for which tenant, what key.
#[derive(Debug)]
pub struct KeyIssue {
    /// The caller, for the audit log.
    pub ctx: AuditContext,
    /// The tenant.
    pub tenant_id: TenantId,
    /// The key's name, role and expiry (checked).
    pub spec: KeySpec,
    /// The request's `Idempotency-Key` ticket, if it had a key.
    pub once: Option<Ticket<IssuedKey>>,
}

/// Issues the keys of a batch (see the module doc); answers in order.
pub fn issue_keys(
    conn: &mut AnyConnection,
    hasher: &ApiKeyHasher,
    batch: &[KeyIssue],
) -> Vec<ServiceResult<IssuedKey>> {
    let now = tenant_core::now();
    let mut answers = Answers::new(batch.len());
    let mut taken = Vec::with_capacity(batch.len());
    let mut items = Vec::with_capacity(batch.len());
    let mut made = Vec::with_capacity(batch.len());
    for (i, w) in batch.iter().enumerate() {
        let (issued, audit) = issue::prepare(&w.ctx, hasher, &w.tenant_id, &w.spec, now);
        match w.once.as_ref().map(|t| t.row(&issued, now)).transpose() {
            Ok(idempotency) => {
                taken.push(i);
                items.push(KeyToIssue {
                    row: issued.row.clone(),
                    audit,
                    idempotency,
                });
                made.push(issued);
            }
            Err(e) => answers.set(i, Err(e)),
        }
    }
    let written = key_batch::issue_many(conn, &items);
    answers.settle_made(&taken, written, made, |k| k);
    answers.finish(batch, |w| {
        within(conn, w.once.as_ref(), |c| {
            Ok(issue::create_key(
                c,
                &w.ctx,
                hasher,
                &w.tenant_id,
                w.spec.clone(),
            )?)
        })
    })
}
