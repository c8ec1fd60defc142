//! Why a configuration could not be rendered.
//!
//! Every error names what to fix: the tenant (by tenant id and gateway account id) or the path of
//! the offending key in the operator's base configuration.

use tenant_core::{ChannelKind, TenantId};

/// A configuration that cannot be rendered, because the gateway would reject it or, worse, accept
/// it and route messages wrongly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Two active tenants share an agent id, so their sessions and workspaces would merge.
    #[error("tenants {first} and {second} share the agent id `{agent_id}`")]
    DuplicateAgent {
        /// The shared agent id.
        agent_id: String,
        /// The tenant that sorts first.
        first: TenantId,
        /// The other tenant.
        second: TenantId,
    },
    /// Two active tenants share an account id on one channel, so one would receive the other's
    /// messages.
    #[error("tenants {first} and {second} share the {channel} account id `{account_id}`")]
    DuplicateAccount {
        /// The channel.
        channel: ChannelKind,
        /// The shared account id.
        account_id: String,
        /// The tenant that sorts first.
        first: TenantId,
        /// The other tenant.
        second: TenantId,
    },
    /// Two active tenants share an account id, which keys their documents in the per-tenant map.
    #[error(
        "tenants {first} and {second} share the account id `{account_id}` that keys their documents"
    )]
    DuplicateDocument {
        /// The shared account id.
        account_id: String,
        /// The tenant that sorts first.
        first: TenantId,
        /// The other tenant.
        second: TenantId,
    },
    /// A tenant has two served channels of one kind, which would bind one account twice.
    #[error("tenant {tenant} (account `{account_id}`) has more than one served {channel} channel")]
    DuplicateChannel {
        /// The tenant.
        tenant: TenantId,
        /// The tenant's account id.
        account_id: String,
        /// The repeated channel kind.
        channel: ChannelKind,
    },
    /// A channel was passed in with a tenant it does not belong to.
    #[error(
        "tenant {tenant} (account `{account_id}`) was given a {channel} channel of tenant {owner}"
    )]
    ForeignChannel {
        /// The tenant it was passed with.
        tenant: TenantId,
        /// That tenant's account id.
        account_id: String,
        /// The channel kind.
        channel: ChannelKind,
        /// The tenant the channel belongs to.
        owner: TenantId,
    },
    /// A gateway id is not in the canonical form the gateway expects (it would silently rewrite
    /// it, breaking the binding).
    #[error("tenant {tenant}: {what} `{id}` is not canonical")]
    NonCanonicalId {
        /// The tenant.
        tenant: TenantId,
        /// Which id: `agent id` or `account id`.
        what: &'static str,
        /// The id as given.
        id: String,
    },
    /// A Slack account lacks the credential its connection mode needs.
    #[error("tenant {tenant} (account `{account_id}`): slack mode `{mode}` needs `{missing}`")]
    SlackModeMismatch {
        /// The tenant.
        tenant: TenantId,
        /// The tenant's account id.
        account_id: String,
        /// The mode in effect.
        mode: &'static str,
        /// The missing credential field.
        missing: &'static str,
    },
    /// The chosen secrets mode is not supported by the chosen dialect.
    #[error(
        "secrets mode `{secrets}` is not supported by the {dialect} dialect: gateways before 2026.3 reject SecretRef objects; use `env` or `inline`"
    )]
    UnsupportedSecretsMode {
        /// The secrets mode asked for.
        secrets: &'static str,
        /// The dialect asked for.
        dialect: &'static str,
    },
    /// A render option is unusable.
    #[error("option `{option}`: {reason}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The base configuration is not JSON/JSON5, or not an object.
    #[error("base config: {0}")]
    BaseSyntax(String),
    /// The base configuration sets a key the generator owns, or gives a section the wrong type.
    #[error("base config: `{path}`: {reason}")]
    BaseConflict {
        /// The dotted path of the key, e.g. `agents.entries.agent-0badcafe`.
        path: String,
        /// Why it cannot be merged.
        reason: String,
    },
}

impl ConfigError {
    pub(crate) fn base(path: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::BaseConflict {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
