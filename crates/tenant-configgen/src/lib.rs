//! Renders the OpenClaw gateway configuration from the control plane's tenants.
//!
//! Pure functions, no IO: the server calls [`render_combined`] for `GET /config` (one shared
//! gateway, every active tenant) and [`render_tenant`] for `GET /tenants/{id}/config` (a gateway of
//! the tenant's own).
//!
//! # What a document carries
//!
//! Only [`TenantStatus::Active`](tenant_core::TenantStatus) tenants, and of their channels only the
//! served ones ([`Channel::is_served`]: enabled, credentials complete). An active tenant without a
//! served channel still gets its agent, so its workspace and sessions survive a channel being
//! switched off and on. A suspended tenant contributes nothing; its per-tenant document is a valid
//! gateway config with no agent, account or binding (and, in the current dialect, no
//! `agents.entries`/`agents.ownership`, which the gateway refuses empty), so a dedicated gateway
//! stops serving it on the next reload.
//!
//! Per tenant: agent `tenant.agent_id` with `name`, `workspace` (`<workspace_root>/<agentId>`) and
//! `agentDir` (`<agent_dir_root>/<agentId>/agent`); per served channel a binding
//! `{agentId, match: {accountId, channel}}` and an account `channels.<kind>.accounts.<accountId>`
//! named after the channel's display name, else the tenant's name. `session.dmScope` is
//! `per-account-channel-peer`. The current dialect writes `agents.entries` and
//! `agents.ownership: "explicit"`; the legacy dialect writes `agents.list`.
//!
//! # Canonical output
//!
//! Every object's keys are in byte order, arrays in document order (base items first, then
//! tenants by agent id and channel name), no whitespace and a final newline: the output is exactly
//! `serde_json::to_string` of itself, whatever the order of the input, so equal input gives
//! byte-identical output (and stable ETags). [`Layout::Pretty`] writes the same document with
//! two-space indentation (exactly `serde_json::to_string_pretty` of itself), for reading. Strings taken from tenants are escaped
//! for JSON and for the gateway's `${VAR}` substitution, so a tenant named `Price ${X}` is shown
//! as such instead of pulling an environment variable into the config.
//!
//! # Speed
//!
//! Each tenant's parts (its agent, its bindings, its accounts) are rendered as items, read from
//! the input once, in input order, and grouped by the first two hex digits of their ids into
//! buckets; a document is written bucket by bucket, sorting and copying only that bucket's items
//! (see `sections.rs`). Nothing builds a `serde_json::Value` tree for the tenants, and work is
//! linear in their number; from 16k tenants on, the first pass over the tenants runs on every
//! CPU (up to 8 threads), with the same result. [`render_combined_into`] reuses the document's and the renderer's
//! memory between calls (at 100k tenants much of a fresh render is page faults on tens of MB of
//! new memory, see `docs/benchmarks.md`).
//!
//! [`IncrementalConfig`] keeps a document across changes: it re-renders only the tenants it is
//! given and reassembles the document from cached chunks, one per bucket, rebuilding only the
//! buckets that changed; the result is byte-identical to [`render_combined`] for the same
//! tenants, and so are its errors.

// The test fixture (`tests/fixture`) names this crate by its name, also in unit tests.
#[cfg(test)]
extern crate self as tenant_configgen;

mod accounts;
mod base;
mod bridge;
mod checks;
mod error;
mod fragments;
mod frame;
mod heap;
mod incremental;
mod json;
mod live;
mod options;
mod render;
mod sections;

use std::fmt;

use tenant_core::{Channel, Tenant};

pub use accounts::env_var_name;
pub use base::BaseConfig;
pub use bridge::{BRIDGE_PLUGIN_ID, BRIDGE_TOKEN_VAR, BridgeOptions};
pub use error::ConfigError;
pub use heap::{HeapParts, hash_map_bytes};
pub use incremental::{ChunkedConfig, IncrementalConfig};
pub use live::Chunk;
pub use options::{Dialect, Layout, Mode, ParseOptionError, RenderOptions, SecretsMode};

/// One tenant with its channels, as loaded from the store.
#[derive(Debug, Clone, Copy)]
pub struct TenantSource<'a> {
    /// The tenant.
    pub tenant: &'a Tenant,
    /// All of its channels; the renderer picks the served ones.
    pub channels: &'a [Channel],
}

/// A rendered gateway configuration.
#[derive(Default)]
pub struct RenderedConfig {
    /// The configuration document (JSON, which the gateway reads as JSON5).
    pub json: String,
    /// In the `env` and `secret-ref` secrets modes, the `KEY=value` lines with the credentials the
    /// document refers to (see [`env_var_name`]); `None` in the `inline` mode.
    pub env_file: Option<String>,
    /// The renderer's working memory, kept for [`render_combined_into`].
    scratch: render::Scratch,
}

impl RenderedConfig {
    /// A rendering of `json` and `env_file`.
    pub fn new(json: String, env_file: Option<String>) -> Self {
        Self {
            json,
            env_file,
            scratch: render::Scratch::default(),
        }
    }
}

impl Clone for RenderedConfig {
    fn clone(&self) -> Self {
        // The working memory is not part of the rendering.
        Self::new(self.json.clone(), self.env_file.clone())
    }
}

impl PartialEq for RenderedConfig {
    fn eq(&self, other: &Self) -> bool {
        self.json == other.json && self.env_file == other.env_file
    }
}

impl Eq for RenderedConfig {}

impl fmt::Debug for RenderedConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Both parts may hold credentials: show sizes only.
        f.debug_struct("RenderedConfig")
            .field("json_bytes", &self.json.len())
            .field("env_file_bytes", &self.env_file.as_ref().map(String::len))
            .finish()
    }
}

/// Renders one document with every active tenant of `tenants`, for a shared gateway.
///
/// The input order does not matter. Fails if two tenants share an agent or account id, a tenant
/// has two served channels of one kind, a channel is passed with the wrong tenant, the options are
/// unusable, or the base config conflicts with what the generator owns.
pub fn render_combined(
    tenants: &[TenantSource<'_>],
    opts: &RenderOptions,
) -> Result<RenderedConfig, ConfigError> {
    let mut out = RenderedConfig::default();
    render::render(tenants, opts, &mut out)?;
    Ok(out)
}

/// [`render_combined`] into `out`, reusing its buffers (the document's and the renderer's
/// working memory): for a caller that renders repeatedly (a sync loop, a benchmark), the tens of
/// MB of a 100k-tenant rendering are then written into memory already mapped instead of
/// page-faulted in afresh (see `docs/benchmarks.md`). `out` is overwritten; after an error its
/// content is unspecified.
pub fn render_combined_into(
    tenants: &[TenantSource<'_>],
    opts: &RenderOptions,
    out: &mut RenderedConfig,
) -> Result<(), ConfigError> {
    render::render(tenants, opts, out)
}

/// Renders the document of one tenant's own gateway: the same agent, paths, accounts and
/// bindings as in the combined document, and nothing of other tenants.
pub fn render_tenant(
    tenant: &TenantSource<'_>,
    opts: &RenderOptions,
) -> Result<RenderedConfig, ConfigError> {
    let mut out = RenderedConfig::default();
    render::render(std::slice::from_ref(tenant), opts, &mut out)?;
    Ok(out)
}
