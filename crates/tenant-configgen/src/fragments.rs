//! One tenant's items: its agent, its bindings and its accounts, each rendered on its own at the
//! depth it takes in the document, so that a document is assembled by copying items (see
//! `sections.rs`) and an incrementally kept document re-renders only the tenants that changed.
//!
//! An item carries no separator before it: whoever places it writes the comma and, in the pretty
//! layout, the newline and indentation, exactly as [`Writer::member`] would.

use serde_json::Value;
use tenant_core::{Channel, Tenant};

use crate::accounts::{EnvFile, write_account};
use crate::checks::KINDS;
use crate::json::{Writer, push_escaped};
use crate::{Dialect, Layout, RenderOptions};

/// The depth of `agents.entries`' members and `agents.list`'s elements.
pub(crate) const AGENT_DEPTH: usize = 3;
/// The depth of `bindings`' elements.
pub(crate) const BINDING_DEPTH: usize = 2;
/// The depth of `channels.<kind>.accounts`' members.
pub(crate) const ACCOUNT_DEPTH: usize = 4;

/// What every item of one document shares: the options and the roots, escaped once.
pub(crate) struct Ctx<'o> {
    pub opts: &'o RenderOptions,
    pub pretty: bool,
    /// How deep the document itself is nested (1 inside the per-tenant map, else 0).
    nest: usize,
    workspace_root: String,
    agent_dir_root: String,
}

impl<'o> Ctx<'o> {
    pub(crate) fn new(opts: &'o RenderOptions, nest: usize) -> Self {
        let escaped = |root: &str| {
            let mut s = String::with_capacity(root.len());
            push_escaped(&mut s, root, true);
            s
        };
        Self {
            opts,
            pretty: opts.layout == Layout::Pretty,
            nest,
            workspace_root: escaped(&opts.workspace_root),
            agent_dir_root: escaped(&opts.agent_dir_root),
        }
    }

    /// The tenant's agent: `"<agentId>":{…}` in `agents.entries` (current dialect), or
    /// `{…,"id":"<agentId>",…}` in `agents.list` (legacy).
    pub(crate) fn agent(&self, out: &mut String, tenant: &Tenant) {
        if !self.pretty {
            return self.agent_compact(out, tenant);
        }
        let mut w = Writer::resume(std::mem::take(out), AGENT_DEPTH + self.nest, self.pretty);
        let agent = tenant.agent_id.as_str();
        let legacy = self.opts.dialect == Dialect::Legacy;
        if !legacy {
            w.item_key_raw(agent);
        }
        w.begin_object();
        // Canonical ids (checked) need no escaping; the roots are escaped already.
        w.key_raw("agentDir");
        w.open_quote();
        w.raw(&self.agent_dir_root);
        w.raw("/");
        w.raw(agent);
        w.raw("/agent");
        w.close_quote();
        if legacy {
            w.field_plain("id", agent);
        }
        w.key_raw("name");
        w.literal(tenant.name.as_str());
        w.key_raw("workspace");
        w.open_quote();
        w.raw(&self.workspace_root);
        w.raw("/");
        w.raw(agent);
        w.close_quote();
        w.end_object();
        *out = w.into_inner();
    }

    /// [`Ctx::agent`] in the compact layout, written in a few copies: every tenant has one, and
    /// going through the writer's per-token calls was a tenth of a render.
    fn agent_compact(&self, out: &mut String, tenant: &Tenant) {
        let agent = tenant.agent_id.as_str();
        if self.opts.dialect == Dialect::Current {
            out.push('"');
            out.push_str(agent);
            out.push_str("\":");
        }
        out.push_str("{\"agentDir\":\"");
        out.push_str(&self.agent_dir_root);
        out.push('/');
        out.push_str(agent);
        if self.opts.dialect == Dialect::Legacy {
            out.push_str("/agent\",\"id\":\"");
            out.push_str(agent);
            out.push_str("\",\"name\":\"");
        } else {
            out.push_str("/agent\",\"name\":\"");
        }
        push_escaped(out, tenant.name.as_str(), true);
        out.push_str("\",\"workspace\":\"");
        out.push_str(&self.workspace_root);
        out.push('/');
        out.push_str(agent);
        out.push_str("\"}");
    }

    /// The tenant's bindings, one per served channel in kind-name order, as one item (the
    /// separators between them included). Nothing for a tenant without a served channel.
    pub(crate) fn bindings(&self, out: &mut String, tenant: &Tenant, served: &[Option<&Channel>]) {
        if !self.pretty {
            // As in `agent_compact`: a few copies per binding instead of the writer's calls.
            let mut first = true;
            for channel in served.iter().flatten() {
                out.push_str(if first {
                    "{\"agentId\":\""
                } else {
                    ",{\"agentId\":\""
                });
                out.push_str(tenant.agent_id.as_str());
                out.push_str("\",\"match\":{\"accountId\":\"");
                out.push_str(tenant.account_id.as_str());
                out.push_str("\",\"channel\":\"");
                out.push_str(channel.kind.as_str());
                out.push_str("\"}}");
                first = false;
            }
            return;
        }
        let mut w = Writer::resume(std::mem::take(out), BINDING_DEPTH + self.nest, self.pretty);
        let agent = tenant.agent_id.as_str();
        let account = tenant.account_id.as_str();
        let mut first = true;
        for channel in served.iter().flatten() {
            if !first {
                w.element();
            }
            first = false;
            w.begin_object();
            w.field_plain("agentId", agent);
            w.key_raw("match");
            w.begin_object();
            w.field_plain("accountId", account);
            w.field_plain("channel", channel.kind.as_str());
            w.end_object();
            w.end_object();
        }
        *out = w.into_inner();
    }

    /// One served channel's account: `"<accountId>":{…}`; its secrets are added to `env` when
    /// given (see [`write_account`]).
    pub(crate) fn account(
        &self,
        out: &mut String,
        env: Option<&mut EnvFile>,
        var: &mut String,
        tenant: &Tenant,
        channel: &Channel,
    ) {
        let mut w = Writer::resume(std::mem::take(out), ACCOUNT_DEPTH + self.nest, self.pretty);
        w.item_key_raw(tenant.account_id.as_str());
        write_account(&mut w, env, var, tenant, channel, self.opts);
        *out = w.into_inner();
    }
}

/// Operator items of one section: (key, item text), by key.
pub(crate) type BaseItems = Vec<(String, String)>;

/// An operator's member of a section (an `agents.entries` agent, a `channels.<kind>.accounts`
/// account) as an item at `depth`: `"<key>":<value>`.
pub(crate) fn base_item(key: &str, value: &Value, depth: usize, pretty: bool) -> String {
    let mut w = Writer::resume(String::new(), depth, pretty);
    w.item_key(key);
    w.value(value);
    w.into_inner()
}

/// The members of the base's `agents.entries` (current dialect) and of each
/// `channels.<kind>.accounts`, in key order: they take their place among the tenants' items.
pub(crate) fn base_members(opts: &RenderOptions, nest: usize) -> (BaseItems, [BaseItems; 5]) {
    let pretty = opts.layout == Layout::Pretty;
    let Some(base) = opts.base.as_ref() else {
        return Default::default();
    };
    let collect = |map: Option<&serde_json::Map<String, Value>>, depth: usize| {
        let mut items: Vec<(String, String)> = map
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), base_item(k, v, depth + nest, pretty)))
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        items
    };
    let entries = match opts.dialect {
        Dialect::Current => collect(
            base.section("agents")
                .and_then(|a| a.get("entries"))
                .and_then(Value::as_object),
            AGENT_DEPTH,
        ),
        Dialect::Legacy => Vec::new(),
    };
    let accounts = KINDS.map(|kind| {
        collect(
            base.section("channels")
                .and_then(|c| c.get(kind.as_str()))
                .and_then(|b| b.get("accounts"))
                .and_then(Value::as_object),
            ACCOUNT_DEPTH,
        )
    });
    (entries, accounts)
}
