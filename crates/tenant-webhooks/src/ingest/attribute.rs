//! Attribution: which tenant an event's identifiers (tenant id, gateway account and agent ids,
//! session key) name, and a cache of the gateway ids that stays correct without a TTL.
//!
//! Why the cache needs no expiry: a tenant's account and agent ids are derived from its id when
//! it is created and never change, and tenant ids are never reused. So a cached `accountId →
//! tenant` entry can only go wrong by the tenant being deleted (on any replica) — and the batch
//! statement checks that the tenant exists when it stores the event, in the same transaction
//! ([`tenant_store::event_batch::Stored::NoTenant`]). The ingestor then forgets the tenant's
//! entries and attributes the event again from the database, so a deleted tenant's account id
//! later taken by a new tenant resolves to the new one. Unknown ids are not cached (they answer
//! 422 and are read again next time).

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use tenant_core::TenantId;
use tenant_store::event_batch::tenants_named as read;
use tenant_store::{AnyConnection, StoreResult};

use super::{IngestError, ValidEvent};

/// The default number of gateway ids cached (account and agent ids together): past it the
/// cache starts again empty. About 100 bytes an entry.
pub const DEFAULT_CAPACITY: usize = 65_536;

#[derive(Debug, Default)]
struct Entries {
    accounts: HashMap<String, TenantId>,
    agents: HashMap<String, TenantId>,
}

impl Entries {
    fn len(&self) -> usize {
        self.accounts.len() + self.agents.len()
    }
}

/// Gateway account and agent ids → tenant, shared by the ingest writers of one process.
#[derive(Debug)]
pub struct TenantLookup {
    entries: Mutex<Entries>,
    capacity: usize,
}

impl Default for TenantLookup {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

/// The identifiers of a batch, resolved.
#[derive(Debug, Default)]
pub(crate) struct Resolution {
    accounts: HashMap<String, TenantId>,
    agents: HashMap<String, TenantId>,
    /// The tenants known to exist, when read from the database; `None` when the cache answered
    /// (existence is then checked when the event is stored).
    tenants: Option<HashSet<TenantId>>,
}

impl Resolution {
    fn tenant(&self, id: TenantId) -> Option<TenantId> {
        match &self.tenants {
            None => Some(id),
            Some(known) => known.contains(&id).then_some(id),
        }
    }
}

impl TenantLookup {
    /// An empty cache holding at most `capacity` ids.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::default(),
            capacity,
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock cannot leave a wrong entry, only a missing one.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Resolves the gateway ids of `events`: from the cache, then the others with one query.
    pub(crate) fn resolve(
        &self,
        conn: &mut AnyConnection,
        events: &[&ValidEvent],
    ) -> StoreResult<Resolution> {
        let mut out = Resolution::default();
        let (mut accounts, mut agents) = (Vec::new(), Vec::new());
        {
            let cached = self.entries();
            for (account, agent) in events.iter().flat_map(|e| gateway_ids(e)) {
                if let Some(a) = account {
                    match cached.accounts.get(a) {
                        Some(t) => {
                            out.accounts.insert(a.to_owned(), *t);
                        }
                        None => accounts.push(a),
                    }
                }
                if let Some(a) = agent {
                    match cached.agents.get(a) {
                        Some(t) => {
                            out.agents.insert(a.to_owned(), *t);
                        }
                        None => agents.push(a),
                    }
                }
            }
        }
        if accounts.is_empty() && agents.is_empty() {
            return Ok(out);
        }
        let rows = read(conn, &[], &accounts, &agents)?;
        let mut cached = self.entries();
        if cached.len() + 2 * rows.len() > self.capacity {
            *cached = Entries::default();
        }
        for (id, account, agent) in rows {
            cached.accounts.insert(account.clone(), id);
            cached.agents.insert(agent.clone(), id);
            out.accounts.insert(account, id);
            out.agents.insert(agent, id);
        }
        Ok(out)
    }

    /// Resolves one event's identifiers from the database only, tenant id included, and caches
    /// what it found. `lookup` is `None` for callers without a cache.
    pub(crate) fn resolve_fresh(
        lookup: Option<&Self>,
        conn: &mut AnyConnection,
        event: &ValidEvent,
    ) -> StoreResult<Resolution> {
        let (mut accounts, mut agents) = (Vec::new(), Vec::new());
        for (account, agent) in gateway_ids(event) {
            accounts.extend(account);
            agents.extend(agent);
        }
        let ids: Vec<TenantId> = event.input.tenant_id.into_iter().collect();
        let rows = read(conn, &ids, &accounts, &agents)?;
        let mut out = Resolution {
            tenants: Some(HashSet::new()),
            ..Resolution::default()
        };
        let mut cached = lookup.map(Self::entries);
        for (id, account, agent) in rows {
            if let Some(c) = cached.as_mut() {
                c.accounts.insert(account.clone(), id);
                c.agents.insert(agent.clone(), id);
            }
            out.tenants.get_or_insert_default().insert(id);
            out.accounts.insert(account, id);
            out.agents.insert(agent, id);
        }
        Ok(out)
    }

    /// Forgets every id of a tenant (it was found deleted).
    pub(crate) fn forget(&self, tenant: &TenantId) {
        let mut cached = self.entries();
        cached.accounts.retain(|_, t| t != tenant);
        cached.agents.retain(|_, t| t != tenant);
    }
}

/// The (account, agent) ids an event names: its own fields and its session key's.
fn gateway_ids(e: &ValidEvent) -> [(Option<&str>, Option<&str>); 2] {
    let key = e.key.as_ref();
    [
        (e.input.account_id.as_deref(), e.input.agent_id.as_deref()),
        (
            key.and_then(|k| k.account_id.as_deref()),
            key.map(|k| k.agent_id.as_str()).or(e.key_agent.as_deref()),
        ),
    ]
}

/// The one tenant every identifier of the event points to, or why there is none (the rules of
/// `docs/webhooks.md`: each identifier given must name the same existing tenant).
pub(crate) fn attribute(e: &ValidEvent, r: &Resolution) -> Result<TenantId, IngestError> {
    let input = &e.input;
    let mut found: Vec<(&'static str, Option<TenantId>)> = Vec::new();
    if let Some(id) = input.tenant_id {
        found.push(("tenantId", r.tenant(id)));
    }
    if let Some(a) = input.account_id.as_deref() {
        found.push(("accountId", r.accounts.get(a).copied()));
    }
    if let Some(a) = input.agent_id.as_deref() {
        found.push(("agentId", r.agents.get(a).copied()));
    }
    if let Some(k) = &e.key {
        let mut t = r.agents.get(&k.agent_id).copied();
        if let (Some(tenant), Some(account)) = (t, k.account_id.as_deref())
            && r.accounts.get(account) != Some(&tenant)
        {
            t = None;
        }
        found.push(("sessionKey", t));
    } else if let Some(agent) = &e.key_agent {
        found.push(("sessionKey", r.agents.get(agent).copied()));
    }
    if found.is_empty() {
        return Err(IngestError::Unresolved {
            fields: vec!["accountId", "agentId", "sessionKey"],
            message: "the event names no accountId, agentId or sessionKey".into(),
        });
    }
    let missing: Vec<&'static str> = found
        .iter()
        .filter(|(_, t)| t.is_none())
        .map(|(f, _)| *f)
        .collect();
    if !missing.is_empty() {
        return Err(IngestError::Unresolved {
            message: format!("no tenant matches {}", missing.join(", ")),
            fields: missing,
        });
    }
    let first = found[0].1;
    if found.iter().any(|(_, t)| *t != first) {
        return Err(IngestError::Unresolved {
            fields: found.iter().map(|(f, _)| *f).collect(),
            message: "the event's identifiers name different tenants".into(),
        });
    }
    first.ok_or_else(|| IngestError::Unresolved {
        fields: vec![found[0].0],
        message: "no tenant matches".into(),
    })
}
