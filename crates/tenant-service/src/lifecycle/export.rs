//! The export of everything a tenant owns, its portability answer: NDJSON, one record a line
//! with a `type` field — the tenant, its channels (credential *status*, never values), users (no
//! password hashes), API key metadata, webhook endpoints (no secrets), events each followed by
//! its deliveries (with their attempts), sessions, audit entries. Written a page at a time
//! ([`PAGE`] rows), each page its own short read, into chunks handed to a bounded channel: the
//! memory it holds is a page and a few chunks, whatever the tenant's size, and a slow reader
//! slows the export instead of filling memory.

use serde_json::{Value, json};
use tenant_core::{Tenant, TenantId};
use tenant_store::crypto::KeyRing;
use tenant_store::export::{self, After};
use tenant_store::{AnyConnection, StoreResult, channels, tenants};

use crate::error::ServiceResult;

/// Rows per page.
pub const PAGE: i64 = 500;
/// A chunk is handed over once it holds this many bytes.
pub const CHUNK_BYTES: usize = 64 * 1024;

fn tenant_record(t: &Tenant) -> Value {
    json!({
        "type": "tenant", "id": t.id.to_string(), "name": t.name.as_str(),
        "slug": t.slug.as_str(), "plan": t.plan.as_str(), "status": t.status.as_str(),
        "accountId": t.account_id.as_str(), "agentId": t.agent_id.as_str(),
        "createdAt": t.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "updatedAt": t.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    })
}

/// Collects lines into chunks of about [`CHUNK_BYTES`] and hands each to `emit`, which answers
/// `false` once nobody reads any more.
struct Writer<F> {
    buf: String,
    emit: F,
    open: bool,
}

impl<F: FnMut(String) -> bool> Writer<F> {
    fn line(&mut self, record: &Value) {
        self.buf.push_str(&record.to_string());
        self.buf.push('\n');
        if self.buf.len() >= CHUNK_BYTES {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if !self.buf.is_empty() && self.open {
            self.open = (self.emit)(std::mem::take(&mut self.buf));
        }
        self.buf.clear();
    }
}

/// Writes the export of `tenant` (which must exist: `NotFound` otherwise, before anything is
/// written) through `emit`, chunk by chunk; stops early, without error, when `emit` answers
/// `false`. Channels' credentials are opened with `ring` only to tell their status.
pub fn export_tenant(
    conn: &mut AnyConnection,
    ring: &KeyRing,
    tenant: &TenantId,
    emit: impl FnMut(String) -> bool,
) -> ServiceResult<()> {
    let t = tenants::find(conn, tenant)?;
    let mut w = Writer {
        buf: String::new(),
        emit,
        open: true,
    };
    w.line(&tenant_record(&t));
    for c in channels::list(conn, tenant, ring)? {
        let state = c.state();
        let missing = match &state {
            tenant_core::ChannelState::AwaitingCredentials { missing } => missing.clone(),
            _ => Vec::new(),
        };
        w.line(&json!({
            "type": "channel", "id": c.id.to_string(), "channel": c.kind.as_str(),
            "enabled": c.enabled, "displayName": c.display_name.as_ref().map(|d| d.as_str()),
            "state": state.as_str(), "missingFields": missing,
            "createdAt": c.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        }));
    }
    for record in export::small_records(conn, tenant)? {
        w.line(&record);
    }
    pages(&mut w, |after: &After| {
        export::events_page(conn, tenant, after, PAGE)
    })?;
    let mut after: Option<String> = None;
    while w.open {
        let (records, next) = export::sessions_page(conn, tenant, after.as_deref(), PAGE)?;
        records.iter().for_each(|r| w.line(r));
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    pages(&mut w, |after: &After| {
        export::audit_page(conn, tenant, after, PAGE)
    })?;
    w.flush();
    Ok(())
}

/// Writes keyset pages from `page` until the last (or until nobody reads).
fn pages<F: FnMut(String) -> bool>(
    w: &mut Writer<F>,
    mut page: impl FnMut(&After) -> StoreResult<(Vec<Value>, After)>,
) -> ServiceResult<()> {
    let mut after: After = None;
    while w.open {
        let (records, next) = page(&after)?;
        records.iter().for_each(|r| w.line(r));
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    Ok(())
}
