//! Sections: the containers of a document that hold one item per tenant (`agents.entries` or
//! `agents.list`, `bindings`, each `channels.<kind>.accounts`, and the per-tenant map), and how
//! their items are ordered and grouped into buckets.
//!
//! A tenant's items sort by its ids' 8 hex digits (their numeric order is the ids' byte order),
//! then by tenant id. Items are grouped by their first two hex digits into 256 buckets, plus a
//! head bucket for operator items that sort before every tenant id. A bucket is small (a 256th
//! of its section) and only its own items are ever sorted or copied together, so assembling a
//! document reads memory bucket by bucket instead of jumping around the whole input, and an
//! incrementally kept document rebuilds only the buckets a change touches. Which bucket an item
//! lands in depends on its key alone, so equal documents are cut into equal buckets whatever
//! their history.

use std::cmp::Ordering;

use tenant_core::{AccountId, AgentId, TenantId};

use crate::fragments::{ACCOUNT_DEPTH, AGENT_DEPTH, BINDING_DEPTH};

/// Buckets per section: the head bucket, then one per value of the first two hex digits.
pub(crate) const BUCKETS: usize = 257;

/// A section of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SectionId {
    /// `agents.entries` (current dialect) or `agents.list` (legacy), by agent id.
    Agents,
    /// `bindings`, by agent id.
    Bindings,
    /// `channels.<kind>.accounts` of the kind at this rank of `KINDS`, by account id.
    Accounts(usize),
    /// The per-tenant map (`mode=per-tenant`): each tenant's own document, by account id.
    Tenants,
}

impl SectionId {
    /// Every section of a combined document, in the order of [`SectionId::index`].
    pub(crate) const COMBINED: [SectionId; 7] = [
        SectionId::Agents,
        SectionId::Bindings,
        SectionId::Accounts(0),
        SectionId::Accounts(1),
        SectionId::Accounts(2),
        SectionId::Accounts(3),
        SectionId::Accounts(4),
    ];

    /// The section's position in [`SectionId::COMBINED`] (the per-tenant map is alone in its
    /// document: 0).
    pub(crate) fn index(self) -> usize {
        match self {
            SectionId::Agents | SectionId::Tenants => 0,
            SectionId::Bindings => 1,
            SectionId::Accounts(rank) => 2 + rank,
        }
    }

    /// The depth of the section's items.
    pub(crate) fn depth(self) -> usize {
        match self {
            SectionId::Agents => AGENT_DEPTH,
            SectionId::Bindings => BINDING_DEPTH,
            SectionId::Accounts(_) => ACCOUNT_DEPTH,
            SectionId::Tenants => 1,
        }
    }

    /// The prefix of the ids the section is ordered by.
    pub(crate) fn prefix(self) -> &'static str {
        match self {
            SectionId::Agents | SectionId::Bindings => AgentId::PREFIX,
            SectionId::Accounts(_) | SectionId::Tenants => AccountId::PREFIX,
        }
    }
}

/// Where an item sorts in its section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Order {
    /// The hex digits of the id the section is ordered by, then (in account sections) the agent
    /// id's digits, so that tenants sharing an account id come in agent order, as the duplicate
    /// check reports them; packed into one number, which decides almost every comparison.
    rank: u64,
    /// Then the tenant.
    pub tenant: TenantId,
    /// 0 for a tenant's item; `i + 1` for the operator item with the section's `i`th base key.
    pub base: u32,
}

impl Order {
    /// A tenant's item.
    pub(crate) fn tenant(key: u32, tie: u32, tenant: TenantId) -> Self {
        Self {
            rank: (u64::from(key) << 32) | u64::from(tie),
            tenant,
            base: 0,
        }
    }

    /// The operator item with base key `index`.
    pub(crate) fn base(index: usize) -> Self {
        Self {
            rank: 0,
            tenant: TenantId::from(uuid::Uuid::nil()),
            base: u32::try_from(index).map_or(u32::MAX, |i| i.saturating_add(1)),
        }
    }

    /// The hex digits of the id the section is ordered by.
    pub(crate) fn key(&self) -> u32 {
        (self.rank >> 32) as u32
    }

    /// Whether this is a tenant's item.
    pub(crate) fn is_tenant(&self) -> bool {
        self.base == 0
    }

    /// The number that orders tenants' items (before their tenant ids).
    pub(crate) fn rank(&self) -> u64 {
        self.rank
    }

    /// Compares two tenants' items.
    #[inline]
    pub(crate) fn cmp_tenants(&self, other: &Self) -> Ordering {
        match self.rank.cmp(&other.rank) {
            Ordering::Equal => self.tenant.cmp(&other.tenant),
            unequal => unequal,
        }
    }

    /// Compares two items of a section with prefix `prefix` and base keys `base_keys` (sorted):
    /// tenants by (key, tie, tenant id), operator items by key, and the two by their keys' text.
    #[inline]
    pub(crate) fn cmp_in(&self, other: &Self, prefix: &str, base_keys: &[String]) -> Ordering {
        if (self.base | other.base) == 0 {
            return self.cmp_tenants(other);
        }
        match (self.base, other.base) {
            (a, 0) => cmp_base_tenant(base_key(base_keys, a), prefix, other.key()),
            (0, b) => cmp_base_tenant(base_key(base_keys, b), prefix, self.key()).reverse(),
            (a, b) => a.cmp(&b),
        }
    }
}

fn base_key(base_keys: &[String], base: u32) -> &str {
    let i = usize::try_from(base.saturating_sub(1)).unwrap_or(usize::MAX);
    base_keys.get(i).map_or("", String::as_str)
}

/// The id `prefix` + `key` as 8 hex digits, on the stack.
fn id_bytes(prefix: &str, key: u32, buf: &mut [u8; 16]) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let p = prefix.as_bytes();
    let n = p.len().min(8);
    buf[..n].copy_from_slice(&p[..n]);
    for i in 0..8 {
        let nibble = (key >> (28 - 4 * i)) & 0xf;
        buf[n + i] = HEX[nibble as usize];
    }
    n + 8
}

/// The id text `prefix` + 8 hex digits of `key`.
pub(crate) fn id_text(prefix: &str, key: u32) -> String {
    let mut buf = [0u8; 16];
    let n = id_bytes(prefix, key, &mut buf);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// An operator key against a tenant id, as text. They are never equal (the base may not use
/// the tenant namespace); if they were, the operator's would come first.
fn cmp_base_tenant(base: &str, prefix: &str, key: u32) -> Ordering {
    let mut buf = [0u8; 16];
    let n = id_bytes(prefix, key, &mut buf);
    base.as_bytes().cmp(&buf[..n]).then(Ordering::Less)
}

/// The bucket of a tenant's item: 1 + its first two hex digits.
pub(crate) fn tenant_bucket(key: u32) -> usize {
    1 + (key >> 24) as usize
}

/// The bucket of an operator item: the last bucket whose first possible tenant id sorts at or
/// before its key (bucket `b + 1` holds the keys from `<prefix><hex b>` up to the next bucket's),
/// or the head bucket for a key before them all.
pub(crate) fn base_bucket(key: &str, prefix: &str) -> usize {
    let mut buf = [0u8; 16];
    (0..=255u32)
        .rev()
        .find(|b| {
            let n = id_bytes(prefix, b << 24, &mut buf);
            // `<prefix><2 hex digits>`: the start of bucket `b + 1`.
            buf[..n - 6] <= *key.as_bytes()
        })
        .map_or(0, |b| 1 + b as usize)
}

/// The first two adjacent tenant items with the same key in a sorted bucket, as the
/// (first, second) tenant ids: two tenants sharing an agent or account id.
pub(crate) fn first_duplicate(
    orders: impl Iterator<Item = Order>,
) -> Option<(u32, TenantId, TenantId)> {
    let mut prev: Option<Order> = None;
    for o in orders.filter(Order::is_tenant) {
        if let Some(p) = prev
            && p.key() == o.key()
        {
            return Some((o.key(), p.tenant, o.tenant));
        }
        prev = Some(o);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_key_order() {
        let prefix = "agent-";
        assert_eq!(tenant_bucket(0), 1);
        assert_eq!(tenant_bucket(u32::MAX), 256);
        assert_eq!(base_bucket("agent", prefix), 0);
        assert_eq!(base_bucket("agent-", prefix), 0);
        assert_eq!(base_bucket("_ops", prefix), 0);
        assert_eq!(base_bucket("agent-00", prefix), 1);
        assert_eq!(
            base_bucket("agent-0badcafe-x", prefix),
            tenant_bucket(0x0bad_cafe)
        );
        assert_eq!(base_bucket("agent-0g", prefix), tenant_bucket(0x0f00_0000));
        assert_eq!(base_bucket("ops", prefix), 256);
        // Every key lands at or after the bucket of any tenant id it sorts after, and before
        // the bucket of any it sorts before.
        let keys = [
            "agent-0",
            "agent-0bad",
            "agent-0badcafe0",
            "agent-7z",
            "agent-fz",
            "b",
        ];
        for key in keys {
            for t in [
                0u32,
                0x0bad_cafe,
                0x0bad_caff,
                0x7fff_ffff,
                0xf000_0000,
                u32::MAX,
            ] {
                let id = id_text(prefix, t);
                let (kb, tb) = (base_bucket(key, prefix), tenant_bucket(t));
                if key < id.as_str() {
                    assert!(kb <= tb, "{key} {id}");
                } else {
                    assert!(kb >= tb, "{key} {id}");
                }
            }
        }
    }

    #[test]
    fn operator_and_tenant_items_order_by_text() {
        let keys = vec!["agent-0badcafe-x".to_owned(), "ops".to_owned()];
        let t = |k| Order::tenant(k, 0, TenantId::from(uuid::Uuid::nil()));
        let cmp = |a: Order, b: Order| a.cmp_in(&b, "agent-", &keys);
        assert_eq!(cmp(Order::base(0), t(0x0bad_cafe)), Ordering::Greater);
        assert_eq!(cmp(Order::base(0), t(0x0bad_caff)), Ordering::Less);
        assert_eq!(cmp(t(u32::MAX), Order::base(1)), Ordering::Less);
        assert_eq!(cmp(Order::base(0), Order::base(1)), Ordering::Less);
        assert_eq!(id_text("tenant-", 0x0bad_cafe), "tenant-0badcafe");
    }
}
