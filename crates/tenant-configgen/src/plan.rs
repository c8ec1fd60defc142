//! Selecting and checking what a document carries: active tenants in agent-id order, their served
//! channels in channel-name order, and each channel's accounts in account-id order.
//!
//! Everything the gateway does not check itself, but that would misroute messages if wrong, is
//! checked here: duplicate agents, accounts and channels, channels passed with the wrong tenant,
//! non-canonical ids and Slack mode/credential mismatches.

use tenant_core::{Channel, ChannelKind, SlackMode, Tenant, TenantStatus};

use crate::{ConfigError, TenantSource};

/// Channel kinds in the order of their names, which is the order they appear in a document.
pub(crate) const KINDS: [ChannelKind; 5] = [
    ChannelKind::Discord,
    ChannelKind::Signal,
    ChannelKind::Slack,
    ChannelKind::Telegram,
    ChannelKind::Whatsapp,
];

/// The position of a kind in [`KINDS`].
pub(crate) fn kind_rank(kind: ChannelKind) -> usize {
    match kind {
        ChannelKind::Discord => 0,
        ChannelKind::Signal => 1,
        ChannelKind::Slack => 2,
        ChannelKind::Telegram => 3,
        ChannelKind::Whatsapp => 4,
    }
}

/// One served channel of an active tenant.
#[derive(Clone, Copy)]
pub(crate) struct Served<'a> {
    pub tenant: &'a Tenant,
    pub channel: &'a Channel,
}

/// What one document carries, in document order.
pub(crate) struct Plan<'a> {
    /// Active tenants, sorted by agent id.
    pub tenants: Vec<&'a Tenant>,
    /// Served channels, by tenant (in `tenants` order), then by kind name: the bindings.
    pub served: Vec<Served<'a>>,
    /// For each kind of [`KINDS`], indexes into `served` sorted by account id.
    pub accounts: [Vec<usize>; 5],
}

impl<'a> Plan<'a> {
    pub(crate) fn build(sources: &'a [TenantSource<'a>]) -> Result<Self, ConfigError> {
        let mut active: Vec<&'a TenantSource<'a>> = sources
            .iter()
            .filter(|s| s.tenant.status == TenantStatus::Active)
            .collect();
        // Sort on a prefix of the id read once per tenant, not on the id behind a pointer at each
        // comparison: with 100k tenants the comparisons' cache misses dominate otherwise.
        let mut keyed: Vec<(u64, &'a TenantSource<'a>)> = active
            .iter()
            .map(|s| (sort_key(s.tenant.agent_id.as_str()), *s))
            .collect();
        keyed.sort_unstable_by(|(ka, a), (kb, b)| {
            ka.cmp(kb)
                .then_with(|| a.tenant.agent_id.as_str().cmp(b.tenant.agent_id.as_str()))
                .then_with(|| a.tenant.id.cmp(&b.tenant.id))
        });
        active.clear();
        active.extend(keyed.into_iter().map(|(_, s)| s));
        for pair in active.windows(2) {
            if let [a, b] = pair
                && a.tenant.agent_id == b.tenant.agent_id
            {
                return Err(ConfigError::DuplicateAgent {
                    agent_id: a.tenant.agent_id.to_string(),
                    first: a.tenant.id,
                    second: b.tenant.id,
                });
            }
        }

        let mut served = Vec::with_capacity(active.len() * 2);
        let mut counts = [0usize; 5];
        for source in &active {
            let tenant = source.tenant;
            check_ids(tenant)?;
            let mut slots: [Option<&'a Channel>; 5] = [None; 5];
            for channel in source.channels {
                if channel.tenant_id != tenant.id {
                    return Err(ConfigError::ForeignChannel {
                        tenant: tenant.id,
                        account_id: tenant.account_id.to_string(),
                        channel: channel.kind,
                        owner: channel.tenant_id,
                    });
                }
                if !channel.is_served() {
                    continue;
                }
                check_slack(tenant, channel)?;
                let slot = &mut slots[kind_rank(channel.kind)];
                if slot.is_some() {
                    return Err(ConfigError::DuplicateChannel {
                        tenant: tenant.id,
                        account_id: tenant.account_id.to_string(),
                        channel: channel.kind,
                    });
                }
                *slot = Some(channel);
            }
            for (rank, channel) in slots.into_iter().enumerate() {
                if let Some(channel) = channel {
                    counts[rank] += 1;
                    served.push(Served { tenant, channel });
                }
            }
        }

        let mut accounts: [Vec<usize>; 5] = counts.map(Vec::with_capacity);
        for (i, s) in served.iter().enumerate() {
            accounts[kind_rank(s.channel.kind)].push(i);
        }
        for (rank, list) in accounts.iter_mut().enumerate() {
            let id = |i: &usize| served[*i].tenant.account_id.as_str();
            // Tenants are already in agent-id order, which for derived ids is account-id order:
            // this sort is then a single linear pass.
            list.sort_by(|a, b| id(a).cmp(id(b)));
            for pair in list.windows(2) {
                if let [a, b] = pair
                    && id(a) == id(b)
                {
                    return Err(ConfigError::DuplicateAccount {
                        channel: KINDS[rank],
                        account_id: id(a).to_owned(),
                        first: served[*a].tenant.id,
                        second: served[*b].tenant.id,
                    });
                }
            }
        }

        Ok(Self {
            tenants: active.iter().map(|s| s.tenant).collect(),
            served,
            accounts,
        })
    }
}

/// The first eight bytes after the common `agent-` prefix, big-endian and zero-padded: ordering by
/// it, then by the whole id, is the ids' byte order.
fn sort_key(id: &str) -> u64 {
    let rest = id
        .as_bytes()
        .get(tenant_core::AgentId::PREFIX.len()..)
        .unwrap_or_default();
    let mut key = [0u8; 8];
    for (k, b) in key.iter_mut().zip(rest) {
        *k = *b;
    }
    u64::from_be_bytes(key)
}

/// Whether `id` is in the gateway's canonical id form: `[a-z0-9][a-z0-9_-]{0,63}` (agent ids may
/// also start with `_`).
fn canonical(id: &str, underscore_first: bool) -> bool {
    let b = id.as_bytes();
    let first_ok = b.first().is_some_and(|c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || (underscore_first && *c == b'_')
    });
    first_ok
        && b.len() <= 64
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-'))
}

fn check_ids(tenant: &Tenant) -> Result<(), ConfigError> {
    let agent = tenant.agent_id.as_str();
    if !canonical(agent, true) {
        return Err(ConfigError::NonCanonicalId {
            tenant: tenant.id,
            what: "agent id",
            id: agent.to_owned(),
        });
    }
    let account = tenant.account_id.as_str();
    if !canonical(account, false) || matches!(account, "default" | "main") {
        return Err(ConfigError::NonCanonicalId {
            tenant: tenant.id,
            what: "account id",
            id: account.to_owned(),
        });
    }
    Ok(())
}

/// A Slack account must carry the bot token and the credential its mode connects with.
pub(crate) fn check_slack(tenant: &Tenant, channel: &Channel) -> Result<(), ConfigError> {
    let Some(mode) = channel.credentials.slack_mode() else {
        return Ok(());
    };
    let needed = match mode {
        SlackMode::Socket => "appToken",
        SlackMode::Http => "signingSecret",
    };
    for field in ["botToken", needed] {
        if channel.credentials.get(field).is_none() {
            return Err(ConfigError::SlackModeMismatch {
                tenant: tenant.id,
                account_id: tenant.account_id.to_string(),
                mode: mode.as_str(),
                missing: field,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_in_name_order_and_complete() {
        let names: Vec<_> = KINDS.iter().map(|k| k.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        assert_eq!(KINDS.len(), ChannelKind::ALL.len());
        for (i, k) in KINDS.iter().enumerate() {
            assert_eq!(kind_rank(*k), i);
        }
    }

    #[test]
    fn canonical_ids() {
        assert!(canonical("tenant-0badcafe", false));
        assert!(canonical("_sys", true));
        assert!(!canonical("_sys", false));
        assert!(!canonical("Tenant", false));
        assert!(!canonical("", true));
        assert!(!canonical(&"a".repeat(65), true));
        assert!(canonical(&"a".repeat(64), true));
        assert!(!canonical("a.b", true));
    }
}
