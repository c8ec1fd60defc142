//! The document around the sections: the generated keys merged with the operator's base, every
//! object's keys in byte order, so the output is exactly `serde_json::to_string` (or, in the
//! pretty layout, `to_string_pretty`) of itself.
//!
//! Where a section goes (see `sections.rs`), the writer hands over to a [`Sink`]: the one-shot
//! renderer writes the section's items there, the incremental one notes the place and fills it
//! with its cached buckets.

use serde_json::{Map, Value};

use crate::bridge::{BRIDGE_PLUGIN_ID, BRIDGE_TOKEN_VAR};
use crate::checks::KINDS;
use crate::json::Writer;
use crate::sections::SectionId;
use crate::{ConfigError, Dialect, RenderOptions, SecretsMode};

/// The one `session.dmScope` that keeps tenants' DM sessions apart on a shared gateway.
pub(crate) const DM_SCOPE: &str = "per-account-channel-peer";

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

/// What fills the sections of a document.
pub(crate) trait Sink {
    /// Whether any tenant has an item in the section (which decides, e.g., whether a channel
    /// kind appears at all).
    fn has_tenants(&self, section: SectionId) -> bool;

    /// Writes the section's items into `w`, whose container (at the section's depth) is open.
    fn members(&mut self, w: &mut Writer, section: SectionId);
}

/// Writes a combined document (the generated sections merged with the base) into `w`.
pub(crate) fn write_combined(
    w: &mut Writer,
    opts: &RenderOptions,
    sink: &mut dyn Sink,
) -> Result<(), ConfigError> {
    let mut doc = Doc {
        w,
        sink,
        opts,
        base_root: opts.base.as_ref().map_or(&*EMPTY, |b| b.as_map()),
    };
    doc.write()
}

/// Writes the per-tenant map (`{"<accountId>": <document>, …}`) into `w`.
pub(crate) fn write_tenant_map(w: &mut Writer, sink: &mut dyn Sink) {
    w.begin_object();
    sink.members(w, SectionId::Tenants);
    w.end_object();
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
    Plugins,
    PluginLoad,
    PluginPaths,
    PluginAllow,
    PluginEntries,
    BridgeEntry,
    BridgeConfig,
    BridgeToken,
    BridgeUrl,
    True,
}

struct Doc<'p, 'w> {
    w: &'w mut Writer,
    sink: &'w mut dyn Sink,
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
        let mut skip = vec!["agents", "bindings", "channels", "session"];
        let mut generated = vec![
            ("agents", Part::Agents),
            ("bindings", Part::Bindings),
            ("channels", Part::Channels),
            ("session", Part::Session),
        ];
        if self.opts.bridge.is_some() {
            skip.push("plugins");
            generated.push(("plugins", Part::Plugins));
        }
        let parts = merged(Some(root), &skip, generated);
        self.object(parts)
    }

    /// The base's `plugins.<key>`, if an object.
    fn plugins_base(&self, key: &str) -> Option<&'p Map<String, Value>> {
        self.base("plugins")
            .and_then(|p| p.get(key))
            .and_then(Value::as_object)
    }

    /// The base's entry of the bridge plugin, if any.
    fn bridge_base(&self) -> Option<&'p Map<String, Value>> {
        self.plugins_base("entries")
            .and_then(|e| e.get(BRIDGE_PLUGIN_ID))
            .and_then(Value::as_object)
    }

    /// The base's strings of the array `plugins.<key>[.<sub>]`.
    fn plugins_strings(&self, key: &str, sub: Option<&str>) -> Vec<&'p Value> {
        let array = match sub {
            Some(sub) => self.plugins_base(key).and_then(|o| o.get(sub)),
            None => self.base("plugins").and_then(|p| p.get(key)),
        };
        array
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default()
    }

    /// `plugins` with the bridge: its load path, its entry, and its id added to a non-empty
    /// allow list (an allow list switches off every plugin it does not name).
    fn plugins(&mut self) -> Result<(), ConfigError> {
        let base = self.base("plugins");
        let mut skip = vec!["entries", "load"];
        let mut generated = vec![("entries", Part::PluginEntries), ("load", Part::PluginLoad)];
        if base.is_some_and(|b| b.contains_key("allow")) {
            skip.push("allow");
            generated.push(("allow", Part::PluginAllow));
        }
        let parts = merged(base, &skip, generated);
        self.object(parts)
    }

    /// An array of the base's strings, then `extra` unless the base has it (or, with
    /// `only_if_any`, unless the base's array is empty).
    fn strings_then(&mut self, base: Vec<&Value>, extra: &str, only_if_any: bool) {
        self.w.begin_array();
        let mut has = false;
        for v in &base {
            has |= v.as_str() == Some(extra);
            self.w.element();
            self.w.value(v);
        }
        let skip = has || (only_if_any && base.is_empty());
        if !skip {
            self.w.element();
            self.w.literal(extra);
        }
        self.w.end_array();
    }

    /// The bridge's token, as the secrets mode carries secrets.
    fn bridge_token(&mut self) {
        let Some(bridge) = &self.opts.bridge else {
            return;
        };
        match (self.opts.secrets, &bridge.token) {
            (SecretsMode::Inline, Some(token)) => self.w.literal(token.expose()),
            (SecretsMode::Inline | SecretsMode::Env, _) => self.w.env_reference(BRIDGE_TOKEN_VAR),
            (SecretsMode::SecretRef, _) => {
                self.w.begin_object();
                self.w.field_plain("id", BRIDGE_TOKEN_VAR);
                self.w.field_plain("provider", "default");
                self.w.field_plain("source", "env");
                self.w.end_object();
            }
        }
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
            Part::Plugins => self.plugins()?,
            Part::PluginLoad => {
                let parts = merged(
                    self.plugins_base("load"),
                    &["paths"],
                    vec![("paths", Part::PluginPaths)],
                );
                self.object(parts)?;
            }
            Part::PluginPaths => {
                let base = self.plugins_strings("load", Some("paths"));
                let path = self.opts.bridge.as_ref().map_or("", |b| &b.plugin_path);
                self.strings_then(base, path, false);
            }
            Part::PluginAllow => {
                let base = self.plugins_strings("allow", None);
                self.strings_then(base, BRIDGE_PLUGIN_ID, true);
            }
            Part::PluginEntries => {
                let parts = merged(
                    self.plugins_base("entries"),
                    &[BRIDGE_PLUGIN_ID],
                    vec![(BRIDGE_PLUGIN_ID, Part::BridgeEntry)],
                );
                self.object(parts)?;
            }
            Part::BridgeEntry => {
                let parts = merged(
                    self.bridge_base(),
                    &["config", "enabled"],
                    vec![("config", Part::BridgeConfig), ("enabled", Part::True)],
                );
                self.object(parts)?;
            }
            Part::BridgeConfig => {
                let base = self
                    .bridge_base()
                    .and_then(|e| e.get("config"))
                    .and_then(Value::as_object);
                let parts = merged(
                    base,
                    &["token", "url"],
                    vec![("token", Part::BridgeToken), ("url", Part::BridgeUrl)],
                );
                self.object(parts)?;
            }
            Part::BridgeToken => self.bridge_token(),
            Part::BridgeUrl => {
                let url = self.opts.bridge.as_ref().map_or("", |b| b.url());
                self.w.literal(url);
            }
            Part::True => self.w.value(&Value::Bool(true)),
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
                if base_entries || self.sink.has_tenants(SectionId::Agents) {
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

    /// `agents.entries`: the base's entries and the tenants', in key order (they are all items
    /// of the agents section).
    fn entries(&mut self) {
        self.w.begin_object();
        self.sink.members(self.w, SectionId::Agents);
        self.w.end_object();
    }

    /// `agents.list` (legacy): the base's agents first, in their order, then the tenants'.
    fn list(&mut self) {
        let base = self
            .base("agents")
            .and_then(|a| a.get("list"))
            .and_then(Value::as_array);
        self.w.begin_array();
        for v in base.into_iter().flatten() {
            self.w.element();
            self.w.value(v);
        }
        self.sink.members(self.w, SectionId::Agents);
        self.w.end_array();
    }

    /// `bindings`: the base's first, then one per served channel, by agent id and channel name.
    fn bindings(&mut self) {
        let root = self.base_root;
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
        self.sink.members(self.w, SectionId::Bindings);
        self.w.end_array();
    }

    fn channels(&mut self) -> Result<(), ConfigError> {
        let used: Vec<usize> = (0..KINDS.len())
            .filter(|rank| self.sink.has_tenants(SectionId::Accounts(*rank)))
            .collect();
        let generated = used
            .iter()
            .map(|rank| (KINDS[*rank].as_str(), Part::Channel(*rank)))
            .collect();
        let base = self.base("channels");
        // A base block for a kind that tenants also use is merged in `Part::Channel`.
        let skip: Vec<&str> = used.iter().map(|rank| KINDS[*rank].as_str()).collect();
        let parts = merged(base, &skip, generated);
        self.object(parts)
    }

    /// `channels.<kind>.accounts`: the base's accounts and the tenants', in key order (all items
    /// of the kind's accounts section).
    fn accounts(&mut self, rank: usize) {
        self.w.begin_object();
        self.sink.members(self.w, SectionId::Accounts(rank));
        self.w.end_object();
    }
}
