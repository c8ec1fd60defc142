//! The checks of one tenant that the gateway does not do itself, but that would misroute messages
//! if wrong: non-canonical ids, channels passed with the wrong tenant, Slack mode/credential
//! mismatches and two served channels of one kind. The checks across tenants (duplicate agents
//! and accounts) run on the sorted sections (see `sections.rs`).

use tenant_core::{AccountId, AgentId, Channel, ChannelKind, SlackMode, Tenant};

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

/// What the document needs to place one checked tenant: its ids as numbers (their 8 hex
/// digits, which order like the ids themselves) and its served channels by kind name.
pub(crate) struct Checked<'a> {
    /// The agent id's hex digits.
    pub agent: u32,
    /// The account id's hex digits.
    pub account: u32,
    /// The served channels, at their kind's rank in [`KINDS`].
    pub served: [Option<&'a Channel>; 5],
}

impl Checked<'_> {
    /// Whether the tenant has any served channel (and so any binding).
    pub(crate) fn has_bindings(&self) -> bool {
        self.served.iter().any(Option::is_some)
    }
}

/// The checks of one tenant and its channels: canonical ids, channels of its own, Slack
/// credentials that suit the mode and at most one served channel per kind.
pub(crate) fn check_tenant<'a>(source: &TenantSource<'a>) -> Result<Checked<'a>, ConfigError> {
    let tenant = source.tenant;
    let (agent, account) = check_ids(tenant)?;
    let mut served: [Option<&'a Channel>; 5] = [None; 5];
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
        let slot = &mut served[kind_rank(channel.kind)];
        if slot.is_some() {
            return Err(ConfigError::DuplicateChannel {
                tenant: tenant.id,
                account_id: tenant.account_id.to_string(),
                channel: channel.kind,
            });
        }
        *slot = Some(channel);
    }
    Ok(Checked {
        agent,
        account,
        served,
    })
}

/// The 8 hex digits after `prefix` as a number, if that is all `id` holds. For ids of that form
/// (every [`AgentId`] and [`AccountId`]), numeric order is the ids' byte order.
pub(crate) fn id_hex(id: &str, prefix: &str) -> Option<u32> {
    let hex = id.strip_prefix(prefix)?.as_bytes();
    if hex.len() != 8 {
        return None;
    }
    hex.iter().try_fold(0u32, |acc, &b| {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        Some((acc << 4) | u32::from(digit))
    })
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

/// Checks both ids and returns their hex digits: the sections order and place tenants by them.
fn check_ids(tenant: &Tenant) -> Result<(u32, u32), ConfigError> {
    let agent = tenant.agent_id.as_str();
    let agent_hex = id_hex(agent, AgentId::PREFIX);
    let Some(agent_hex) = agent_hex.filter(|_| canonical(agent, true)) else {
        return Err(ConfigError::NonCanonicalId {
            tenant: tenant.id,
            what: "agent id",
            id: agent.to_owned(),
        });
    };
    let account = tenant.account_id.as_str();
    let account_hex = id_hex(account, AccountId::PREFIX);
    let Some(account_hex) =
        account_hex.filter(|_| canonical(account, false) && !matches!(account, "default" | "main"))
    else {
        return Err(ConfigError::NonCanonicalId {
            tenant: tenant.id,
            what: "account id",
            id: account.to_owned(),
        });
    };
    Ok((agent_hex, account_hex))
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

    #[test]
    fn hex_keys_order_like_the_ids() {
        assert_eq!(id_hex("agent-0badcafe", "agent-"), Some(0x0bad_cafe));
        assert_eq!(id_hex("agent-0BADCAFE", "agent-"), None);
        assert_eq!(id_hex("agent-0badcaf", "agent-"), None);
        assert_eq!(id_hex("tenant-ffffffff", "tenant-"), Some(u32::MAX));
        assert_eq!(id_hex("tenant-+fffffff", "tenant-"), None);
        let ids = [
            "agent-00000000",
            "agent-0000000a",
            "agent-00000010",
            "agent-a0000000",
        ];
        let keys: Vec<_> = ids.iter().map(|i| id_hex(i, "agent-").unwrap()).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
    }
}
