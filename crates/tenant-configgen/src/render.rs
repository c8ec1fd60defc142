//! Writing the document: the generated sections merged with the operator's base, every object's
//! keys in byte order, so the output is exactly `serde_json::to_string` (or, in the pretty
//! layout, `to_string_pretty`) of itself.

use serde_json::{Map, Value};

use crate::accounts::EnvFile;
use crate::json::{Writer, push_escaped};
use crate::plan::{KINDS, Plan, Row};
use crate::{
    ConfigError, Dialect, Layout, RenderOptions, RenderedConfig, SecretsMode, TenantSource,
};

/// The one `session.dmScope` that keeps tenants' DM sessions apart on a shared gateway.
pub(crate) const DM_SCOPE: &str = "per-account-channel-peer";

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

pub(crate) fn render(
    sources: &[TenantSource<'_>],
    opts: &RenderOptions,
    out: &mut RenderedConfig,
) -> Result<(), ConfigError> {
    out.json.clear();
    opts.validate()?;
    let base = opts.base.as_ref();
    if let Some(base) = base {
        base.check_against(
            opts.dialect,
            &[
                &opts.workspace_root,
                &opts.agent_dir_root,
                &opts.whatsapp_auth_root,
            ],
        )?;
    }
    let pretty = opts.layout == Layout::Pretty;
    let plan = Plan::build(sources, opts)?;
    let escaped = |root: &str| {
        let mut s = String::with_capacity(root.len());
        push_escaped(&mut s, root, true);
        s
    };
    let mut json = std::mem::take(&mut out.json);
    json.reserve(estimate(&plan, opts));
    let mut doc = Doc {
        w: Writer::into(json, pretty),
        workspace_root: escaped(&opts.workspace_root),
        agent_dir_root: escaped(&opts.agent_dir_root),
        plan: &plan,
        opts,
        base_root: base.map_or(&*EMPTY, |b| b.as_map()),
    };
    let written = doc.write();
    out.json = doc.w.finish();
    written?;
    out.env_file = match opts.secrets {
        SecretsMode::Inline => None,
        SecretsMode::Env | SecretsMode::SecretRef => {
            // The lines in document order: kinds by name, accounts by id.
            let mut env = EnvFile::into(out.env_file.take().unwrap_or_default(), plan.env_len());
            for &i in plan.accounts.iter().flatten() {
                env.text.push_str(plan.env_str(plan.served[i].env));
            }
            Some(env.text)
        }
    };
    Ok(())
}

/// The document's size, nearly exact: the pre-rendered text (account values, names, ids) plus
/// what each agent and binding adds around it, plus a guess for the base.
fn estimate(plan: &Plan<'_>, opts: &RenderOptions) -> usize {
    let roots = opts.workspace_root.len() + opts.agent_dir_root.len();
    let (per_row, per_served) = match opts.layout {
        Layout::Pretty => (192, 224),
        Layout::Compact => (96, 96),
    };
    4096 + plan.text_len()
        + plan.rows.len() * (per_row + 2 * roots)
        + plan.served.len() * per_served
}

/// A member of an object whose keys come from both the base and the generator.
enum Part<'v> {
    Base(&'v Value),
    Agents,
    Bindings,
    Channels,
    Session,
    Defaults,
    Entries,
    List,
    Ownership,
    DmScope,
    Channel(usize),
    Accounts(usize),
}

struct Doc<'p, 'a> {
    w: Writer,
    /// The roots, escaped once as gateway literals.
    workspace_root: String,
    agent_dir_root: String,
    plan: &'p Plan<'a>,
    opts: &'p RenderOptions,
    base_root: &'p Map<String, Value>,
}

/// Collects an object's members from the base (minus `skip`) and the generator, in key order.
fn merged<'v>(
    base: Option<&'v Map<String, Value>>,
    skip: &[&str],
    generated: Vec<(&'v str, Part<'v>)>,
) -> Vec<(&'v str, Part<'v>)> {
    let mut parts = generated;
    for (k, v) in base.into_iter().flatten() {
        if !skip.contains(&k.as_str()) {
            parts.push((k.as_str(), Part::Base(v)));
        }
    }
    parts.sort_by(|a, b| a.0.cmp(b.0));
    parts
}

impl<'p> Doc<'p, '_> {
    fn base(&self, key: &str) -> Option<&'p Map<String, Value>> {
        self.base_root.get(key).and_then(Value::as_object)
    }

    fn write(&mut self) -> Result<(), ConfigError> {
        let root = self.base_root;
        let parts = merged(
            Some(root),
            &["agents", "bindings", "channels", "session"],
            vec![
                ("agents", Part::Agents),
                ("bindings", Part::Bindings),
                ("channels", Part::Channels),
                ("session", Part::Session),
            ],
        );
        self.object(parts)
    }

    fn object(&mut self, parts: Vec<(&str, Part<'_>)>) -> Result<(), ConfigError> {
        self.w.begin_object();
        for (key, part) in parts {
            self.w.key(key);
            self.part(part)?;
        }
        self.w.end_object();
        Ok(())
    }

    fn part(&mut self, part: Part<'_>) -> Result<(), ConfigError> {
        match part {
            Part::Base(v) => self.w.value(v),
            Part::Agents => self.agents()?,
            Part::Bindings => self.bindings(),
            Part::Channels => self.channels()?,
            Part::Session => {
                let parts = merged(self.base("session"), &[], vec![("dmScope", Part::DmScope)]);
                self.object(parts)?;
            }
            Part::DmScope => self.w.raw_str(DM_SCOPE),
            Part::Ownership => self.w.raw_str("explicit"),
            Part::Defaults => self.defaults()?,
            Part::Entries => self.entries(),
            Part::List => self.list(),
            Part::Channel(rank) => {
                let base = self
                    .base("channels")
                    .and_then(|c| c.get(KINDS[rank].as_str()))
                    .and_then(Value::as_object);
                let parts = merged(
                    base,
                    &["accounts"],
                    vec![("accounts", Part::Accounts(rank))],
                );
                self.object(parts)?;
            }
            Part::Accounts(rank) => self.accounts(rank),
        }
        Ok(())
    }

    fn agents(&mut self) -> Result<(), ConfigError> {
        let base = self.base("agents");
        let mut generated = Vec::with_capacity(3);
        match self.opts.dialect {
            Dialect::Current => {
                generated.push(("defaults", Part::Defaults));
                // The gateway rejects explicit ownership of an empty `entries` map. With no agent
                // at all (no active tenant, none in the base) both are left out; with no account
                // or binding either, the gateway then serves nothing.
                let base_entries = base
                    .and_then(|b| b.get("entries"))
                    .and_then(Value::as_object)
                    .is_some_and(|m| !m.is_empty());
                if base_entries || !self.plan.rows.is_empty() {
                    generated.push(("entries", Part::Entries));
                    generated.push(("ownership", Part::Ownership));
                }
            }
            Dialect::Legacy => {
                generated.push(("list", Part::List));
                if base.is_some_and(|b| b.contains_key("defaults")) {
                    generated.push(("defaults", Part::Defaults));
                }
            }
        }
        let parts = merged(base, &["defaults", "entries", "list"], generated);
        self.object(parts)
    }

    /// The base's `agents.defaults`; in the current dialect with `heartbeat.every: "0m"` added
    /// unless the base sets a heartbeat interval or names a system agent (the gateway warns when
    /// neither is set and agent ownership is explicit).
    fn defaults(&mut self) -> Result<(), ConfigError> {
        let mut defaults = self
            .base("agents")
            .and_then(|a| a.get("defaults"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let needs_heartbeat = self.opts.dialect == Dialect::Current
            && !defaults.contains_key("systemAgent")
            && defaults
                .get("heartbeat")
                .and_then(|h| h.get("every"))
                .is_none();
        if needs_heartbeat {
            let heartbeat = defaults
                .entry("heartbeat")
                .or_insert_with(|| Value::Object(Map::new()));
            let Some(heartbeat) = heartbeat.as_object_mut() else {
                return Err(ConfigError::base(
                    "agents.defaults.heartbeat",
                    "must be an object",
                ));
            };
            heartbeat.insert("every".to_owned(), Value::String("0m".to_owned()));
        }
        self.w.value(&Value::Object(defaults));
        Ok(())
    }

    fn agent_fields(&mut self, row: &Row<'_>, with_id: bool) {
        let plan = self.plan;
        let agent = plan.str(row.agent);
        // Canonical ids (checked by the plan) need no escaping; the roots are escaped already.
        self.w.key_raw("agentDir");
        self.w.open_quote();
        self.w.raw(&self.agent_dir_root);
        self.w.raw("/");
        self.w.raw(agent);
        self.w.raw("/agent");
        self.w.close_quote();
        if with_id {
            self.w.field_plain("id", agent);
        }
        self.w.key_raw("name");
        self.w.open_quote();
        self.w.raw(plan.str(row.name));
        self.w.close_quote();
        self.w.key_raw("workspace");
        self.w.open_quote();
        self.w.raw(&self.workspace_root);
        self.w.raw("/");
        self.w.raw(agent);
        self.w.close_quote();
    }

    /// `agents.entries`: the base's entries and the tenants', merged in key order (their keys
    /// never collide: the base may not use the tenant namespace).
    fn entries(&mut self) {
        let base: Vec<(&String, &Value)> = self
            .base("agents")
            .and_then(|a| a.get("entries"))
            .and_then(Value::as_object)
            .map(|m| m.iter().collect())
            .unwrap_or_default();
        let mut base = base.into_iter().peekable();
        let plan = self.plan;
        self.w.begin_object();
        for row in &plan.rows {
            let id = plan.str(row.agent);
            while let Some((k, v)) = base.next_if(|(k, _)| k.as_str() < id) {
                self.w.key(k);
                self.w.value(v);
            }
            self.w.key_raw(id);
            self.w.begin_object();
            self.agent_fields(row, false);
            self.w.end_object();
        }
        for (k, v) in base {
            self.w.key(k);
            self.w.value(v);
        }
        self.w.end_object();
    }

    /// `agents.list` (legacy): the base's agents first, in their order, then the tenants'.
    fn list(&mut self) {
        let base = self
            .base("agents")
            .and_then(|a| a.get("list"))
            .and_then(Value::as_array);
        let plan = self.plan;
        self.w.begin_array();
        for v in base.into_iter().flatten() {
            self.w.element();
            self.w.value(v);
        }
        for row in &plan.rows {
            self.w.element();
            self.w.begin_object();
            self.agent_fields(row, true);
            self.w.end_object();
        }
        self.w.end_array();
    }

    /// `bindings`: the base's first, then one per served channel, by agent id and channel name.
    fn bindings(&mut self) {
        let root = self.base_root;
        let plan = self.plan;
        self.w.begin_array();
        for v in root
            .get("bindings")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.w.element();
            self.w.value(v);
        }
        for row in &plan.rows {
            let agent = plan.str(row.agent);
            let account = plan.str(row.account);
            for s in plan
                .served
                .iter()
                .take(row.served_end)
                .skip(row.served_start)
            {
                self.w.element();
                self.w.begin_object();
                self.w.field_plain("agentId", agent);
                self.w.key_raw("match");
                self.w.begin_object();
                self.w.field_plain("accountId", account);
                self.w.field_plain("channel", s.kind.as_str());
                self.w.end_object();
                self.w.end_object();
            }
        }
        self.w.end_array();
    }

    fn channels(&mut self) -> Result<(), ConfigError> {
        let generated = KINDS
            .iter()
            .enumerate()
            .filter(|(rank, _)| !self.plan.accounts[*rank].is_empty())
            .map(|(rank, kind)| (kind.as_str(), Part::Channel(rank)))
            .collect();
        let base = self.base("channels");
        // A base block for a kind that tenants also use is merged in `Part::Channel`.
        let skip: Vec<&str> = KINDS
            .iter()
            .enumerate()
            .filter(|(rank, _)| !self.plan.accounts[*rank].is_empty())
            .map(|(_, k)| k.as_str())
            .collect();
        let parts = merged(base, &skip, generated);
        self.object(parts)
    }

    /// `channels.<kind>.accounts`: the base's accounts and the tenants', merged in key order.
    fn accounts(&mut self, rank: usize) {
        let base: Vec<(&String, &Value)> = self
            .base("channels")
            .and_then(|c| c.get(KINDS[rank].as_str()))
            .and_then(|b| b.get("accounts"))
            .and_then(Value::as_object)
            .map(|m| m.iter().collect())
            .unwrap_or_default();
        let mut base = base.into_iter().peekable();
        let plan = self.plan;
        self.w.begin_object();
        for &i in &plan.accounts[rank] {
            let served = &plan.served[i];
            let id = plan.str(served.account);
            while let Some((k, v)) = base.next_if(|(k, _)| k.as_str() < id) {
                self.w.key(k);
                self.w.value(v);
            }
            self.w.key_raw(id);
            self.w.raw(plan.str(served.body));
        }
        for (k, v) in base {
            self.w.key(k);
            self.w.value(v);
        }
        self.w.end_object();
    }
}
