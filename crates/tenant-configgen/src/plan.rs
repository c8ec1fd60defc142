//! Selecting and checking what a document carries: active tenants in agent-id order, their served
//! channels in channel-name order, and each channel's accounts in account-id order.
//!
//! Everything the gateway does not check itself, but that would misroute messages if wrong, is
//! checked here: duplicate agents, accounts and channels, channels passed with the wrong tenant,
//! non-canonical ids and Slack mode/credential mismatches.

use tenant_core::{
    AccountId, AgentId, Channel, ChannelKind, SlackMode, Tenant, TenantId, TenantStatus,
};

use crate::accounts::{EnvFile, write_account};
use crate::json::{Writer, push_escaped};
use crate::{ConfigError, Layout, RenderOptions, SecretsMode, TenantSource};

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

/// A piece of [`Plan::text`].
#[derive(Clone, Copy, Default)]
pub(crate) struct Span {
    start: usize,
    end: usize,
}

/// One active tenant, reduced to what its parts of the document need.
pub(crate) struct Row<'a> {
    /// [`sort_key`] of the agent id.
    key: u64,
    pub tenant: &'a Tenant,
    /// The agent id, then the account id, then the name escaped as a gateway literal (without
    /// quotes), one after the other in [`Plan::text`].
    pub agent: Span,
    pub account: Span,
    pub name: Span,
    /// The tenant's served channels: `served[served_start..served_end]`, by kind name.
    pub served_start: usize,
    pub served_end: usize,
}

/// One served channel of an active tenant, its account value already rendered.
pub(crate) struct Served<'a> {
    pub tenant: &'a Tenant,
    pub kind: ChannelKind,
    /// The tenant's account id.
    pub account: Span,
    /// The channel's account value (`{…}`), rendered at the depth of
    /// `channels.<kind>.accounts.<accountId>`.
    pub body: Span,
    /// Its environment file lines (`env` and `secret-ref` modes).
    pub env: Span,
}

/// What one document carries, in document order.
///
/// Built in two steps, because the input comes in any order and is scattered over the heap:
/// first every tenant is read once, in input order, and everything the document needs of it is
/// copied (and the accounts rendered) into one contiguous [`Plan::text`]; then only the small
/// rows are sorted, and the document is written from them and that text. Reading the tenants'
/// strings and credential maps in document order instead costs a cache miss per string, which
/// made rendering 100k tenants some 20 times slower per tenant than 1k.
pub(crate) struct Plan<'a> {
    /// Active tenants, sorted by agent id.
    pub rows: Vec<Row<'a>>,
    /// Served channels, grouped by tenant in the order of input, each tenant's by kind name.
    pub served: Vec<Served<'a>>,
    /// For each kind of [`KINDS`], indexes into `served` sorted by account id.
    pub accounts: [Vec<usize>; 5],
    /// The strings spans point into.
    text: String,
    /// Environment file lines spans point into.
    env: String,
}

impl<'a> Plan<'a> {
    pub(crate) fn str(&self, span: Span) -> &str {
        self.text.get(span.start..span.end).unwrap_or_default()
    }

    pub(crate) fn env_str(&self, span: Span) -> &str {
        self.env.get(span.start..span.end).unwrap_or_default()
    }

    /// The size of all pre-rendered text: account values and names.
    pub(crate) fn text_len(&self) -> usize {
        self.text.len()
    }

    pub(crate) fn env_len(&self) -> usize {
        self.env.len()
    }

    pub(crate) fn build(
        sources: &'a [TenantSource<'a>],
        opts: &RenderOptions,
    ) -> Result<Self, ConfigError> {
        let with_env = opts.secrets != SecretsMode::Inline;
        let pretty = opts.layout == Layout::Pretty;
        let mut rows = Vec::with_capacity(sources.len());
        let mut served = Vec::with_capacity(sources.len() * 2);
        let mut text = String::with_capacity(sources.len() * if pretty { 320 } else { 224 });
        let mut env = EnvFile::lines(if with_env { sources.len() * 160 } else { 0 });
        let mut var = String::with_capacity(64);
        // Per-tenant errors, reported for the tenant that sorts first (as if checked in order).
        let mut errors: Vec<(&'a Tenant, ConfigError)> = Vec::new();

        for source in sources {
            let tenant = source.tenant;
            if tenant.status != TenantStatus::Active {
                continue;
            }
            if let Err(e) = check_tenant(source) {
                errors.push((tenant, e));
                continue;
            }
            let agent_id = tenant.agent_id.as_str();
            let account_id = tenant.account_id.as_str();
            let mut row = Row {
                key: sort_key(agent_id, AgentId::PREFIX),
                tenant,
                agent: push(&mut text, agent_id),
                account: push(&mut text, account_id),
                name: Span::default(),
                served_start: served.len(),
                served_end: served.len(),
            };
            let start = text.len();
            push_escaped(&mut text, tenant.name.as_str(), true);
            row.name = Span {
                start,
                end: text.len(),
            };
            for channel in served_slots(source).into_iter().flatten() {
                let mut w = Writer::resume(std::mem::take(&mut text), ACCOUNT_DEPTH, pretty);
                let body_start = w.len();
                let env_start = env.text.len();
                let env_lines = with_env.then_some(&mut env);
                write_account(&mut w, env_lines, &mut var, tenant, channel, opts);
                text = w.into_inner();
                served.push(Served {
                    tenant,
                    kind: channel.kind,
                    account: row.account,
                    body: Span {
                        start: body_start,
                        end: text.len(),
                    },
                    env: Span {
                        start: env_start,
                        end: env.text.len(),
                    },
                });
            }
            row.served_end = served.len();
            rows.push(row);
        }

        let str_of = |s: Span| text.get(s.start..s.end).unwrap_or_default();
        rows.sort_unstable_by(|a, b| {
            a.key
                .cmp(&b.key)
                .then_with(|| str_of(a.agent).cmp(str_of(b.agent)))
                .then_with(|| a.tenant.id.cmp(&b.tenant.id))
        });
        if !errors.is_empty() {
            // The per-tenant checks of the tenants that failed them were skipped above: put them
            // back in place and check for duplicate agents first, as rendering in order would.
            let mut all: Vec<(&str, TenantId, Option<ConfigError>)> = rows
                .iter()
                .map(|r| (str_of(r.agent), r.tenant.id, None))
                .chain(
                    errors
                        .into_iter()
                        .map(|(t, e)| (t.agent_id.as_str(), t.id, Some(e))),
                )
                .collect();
            all.sort_by(|a, b| a.0.cmp(b.0).then_with(|| a.1.cmp(&b.1)));
            duplicate_agent(all.iter().map(|(agent, id, _)| (*agent, *id)))?;
            if let Some(e) = all.into_iter().find_map(|(_, _, e)| e) {
                return Err(e);
            }
        }
        duplicate_agent(rows.iter().map(|r| (str_of(r.agent), r.tenant.id)))?;

        let mut accounts: [Vec<(u64, usize)>; 5] = Default::default();
        for row in &rows {
            let key = sort_key(str_of(row.account), AccountId::PREFIX);
            for i in row.served_start..row.served_end {
                if let Some(s) = served.get(i) {
                    accounts[kind_rank(s.kind)].push((key, i));
                }
            }
        }
        let id = |i: usize| served.get(i).map_or("", |s| str_of(s.account));
        let accounts = accounts.map(|mut list| {
            // Tenants are already in agent-id order, which for derived ids is account-id order:
            // this (stable) sort is then a single linear pass.
            list.sort_by(|(ka, a), (kb, b)| ka.cmp(kb).then_with(|| id(*a).cmp(id(*b))));
            list
        });
        for (rank, list) in accounts.iter().enumerate() {
            for pair in list.windows(2) {
                if let [(ka, a), (kb, b)] = pair
                    && ka == kb
                    && id(*a) == id(*b)
                {
                    return Err(ConfigError::DuplicateAccount {
                        channel: KINDS[rank],
                        account_id: id(*a).to_owned(),
                        first: served[*a].tenant.id,
                        second: served[*b].tenant.id,
                    });
                }
            }
        }
        let accounts = accounts.map(|list| list.into_iter().map(|(_, i)| i).collect());

        Ok(Self {
            rows,
            served,
            accounts,
            text,
            env: env.text,
        })
    }
}

/// The depth of `channels.<kind>.accounts.<accountId>`'s value in a document.
const ACCOUNT_DEPTH: usize = 4;

fn push(text: &mut String, s: &str) -> Span {
    let start = text.len();
    text.push_str(s);
    Span {
        start,
        end: text.len(),
    }
}

/// Fails on the first pair of equal agent ids in a sorted sequence.
fn duplicate_agent<'s>(
    sorted: impl Iterator<Item = (&'s str, TenantId)>,
) -> Result<(), ConfigError> {
    let mut prev: Option<(&str, TenantId)> = None;
    for (agent, id) in sorted {
        if let Some((p, first)) = prev
            && p == agent
        {
            return Err(ConfigError::DuplicateAgent {
                agent_id: agent.to_owned(),
                first,
                second: id,
            });
        }
        prev = Some((agent, id));
    }
    Ok(())
}

/// The checks of one tenant and its channels: canonical ids, channels of its own, Slack
/// credentials that suit the mode and at most one served channel per kind.
fn check_tenant(source: &TenantSource<'_>) -> Result<(), ConfigError> {
    let tenant = source.tenant;
    check_ids(tenant)?;
    let mut seen = [false; 5];
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
        let slot = &mut seen[kind_rank(channel.kind)];
        if *slot {
            return Err(ConfigError::DuplicateChannel {
                tenant: tenant.id,
                account_id: tenant.account_id.to_string(),
                channel: channel.kind,
            });
        }
        *slot = true;
    }
    Ok(())
}

/// A checked tenant's served channels, by kind name.
fn served_slots<'a>(source: &TenantSource<'a>) -> [Option<&'a Channel>; 5] {
    let mut slots: [Option<&'a Channel>; 5] = [None; 5];
    for channel in source.channels {
        if channel.is_served() {
            slots[kind_rank(channel.kind)] = Some(channel);
        }
    }
    slots
}

/// The first eight bytes after the common prefix (`agent-`, `tenant-`), big-endian and
/// zero-padded: ordering by it, then by the whole id, is the ids' byte order (every id has the
/// prefix).
fn sort_key(id: &str, prefix: &str) -> u64 {
    let rest = id.as_bytes().get(prefix.len()..).unwrap_or_default();
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
