//! The operator's base configuration: gateway, models, plugins and defaults, merged under the
//! generated sections.
//!
//! The generator owns `agents.ownership`, `session.dmScope`, and every agent, binding and account
//! in the tenant namespace (`agent-<8 hex>` agents, `tenant-<8 hex>` accounts), whether or not
//! such a tenant exists today. A base that sets any of them is refused with the key's path, so an
//! operator typo can never shadow or hijack a tenant. Everything else passes through unchanged.

use serde_json::{Map, Value};
use tenant_core::{AccountId, AgentId};

use crate::ConfigError;

/// How deep a base configuration may nest objects and arrays (as deep as `serde_json` reads
/// JSON). The JSON5 parser recurses once a level with no limit of its own: a deeper document
/// would overflow the stack (the reproducer: `fuzz/seeds/config_render/deep_nesting`).
pub const MAX_DEPTH: usize = 128;

/// A validated operator base configuration (a JSON object).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BaseConfig {
    root: Map<String, Value>,
}

impl BaseConfig {
    /// Parses JSON or JSON5 (comments, trailing commas, unquoted keys, single quotes) and checks
    /// that it leaves the generator's keys alone.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        if nests_deeper_than(text, MAX_DEPTH) {
            return Err(ConfigError::BaseSyntax(format!(
                "objects and arrays nested deeper than {MAX_DEPTH} levels"
            )));
        }
        let value: Value =
            json5::from_str(text).map_err(|e| ConfigError::BaseSyntax(e.to_string()))?;
        Self::from_value(value)
    }

    /// Checks an already parsed document.
    pub fn from_value(value: Value) -> Result<Self, ConfigError> {
        let Value::Object(root) = value else {
            return Err(ConfigError::BaseSyntax(
                "the document must be a JSON object".to_owned(),
            ));
        };
        let base = Self { root };
        base.check()?;
        Ok(base)
    }

    /// The top-level object.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.root
    }

    pub(crate) fn section(&self, key: &str) -> Option<&Map<String, Value>> {
        self.root.get(key).and_then(Value::as_object)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let object = |path: &str, v: &Value| -> Result<(), ConfigError> {
            if v.is_object() {
                Ok(())
            } else {
                Err(ConfigError::base(path, "must be an object"))
            }
        };
        if let Some(agents) = self.root.get("agents") {
            object("agents", agents)?;
            self.check_agents()?;
        }
        if let Some(session) = self.root.get("session") {
            object("session", session)?;
            if session.get("dmScope").is_some() {
                return Err(ConfigError::base(
                    "session.dmScope",
                    "is set by the generator (per-account-channel-peer)",
                ));
            }
        }
        if let Some(bindings) = self.root.get("bindings") {
            let Some(items) = bindings.as_array() else {
                return Err(ConfigError::base("bindings", "must be an array"));
            };
            for (i, b) in items.iter().enumerate() {
                if let Some(agent) = b.get("agentId").and_then(Value::as_str) {
                    reserved_agent(&format!("bindings.{i}.agentId"), agent)?;
                }
                let account = b.pointer("/match/accountId").and_then(Value::as_str);
                if let Some(account) = account {
                    reserved_account(&format!("bindings.{i}.match.accountId"), account)?;
                }
            }
        }
        if let Some(channels) = self.root.get("channels") {
            object("channels", channels)?;
            for (kind, block) in channels.as_object().into_iter().flatten() {
                let path = format!("channels.{kind}");
                object(&path, block)?;
                if let Some(accounts) = block.get("accounts") {
                    let path = format!("{path}.accounts");
                    object(&path, accounts)?;
                    for id in accounts.as_object().into_iter().flatten().map(|(k, _)| k) {
                        reserved_account(&format!("{path}.{id}"), id)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn check_agents(&self) -> Result<(), ConfigError> {
        let agents = self.section("agents").into_iter().flatten();
        for (key, v) in agents {
            match key.as_str() {
                "ownership" => {
                    return Err(ConfigError::base(
                        "agents.ownership",
                        "is set by the generator (explicit)",
                    ));
                }
                "defaults" if !v.is_object() => {
                    return Err(ConfigError::base("agents.defaults", "must be an object"));
                }
                "entries" => {
                    let Some(entries) = v.as_object() else {
                        return Err(ConfigError::base("agents.entries", "must be an object"));
                    };
                    for id in entries.keys() {
                        reserved_agent(&format!("agents.entries.{id}"), id)?;
                    }
                }
                "list" => {
                    let Some(list) = v.as_array() else {
                        return Err(ConfigError::base("agents.list", "must be an array"));
                    };
                    for (i, entry) in list.iter().enumerate() {
                        if let Some(id) = entry.get("id").and_then(Value::as_str) {
                            reserved_agent(&format!("agents.list.{i}.id"), id)?;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn reserved_agent(path: &str, id: &str) -> Result<(), ConfigError> {
    match AgentId::parse(id) {
        Ok(_) => Err(ConfigError::base(
            path,
            format!("`{id}` is in the tenant agent namespace (agent-<8 hex>) the generator owns"),
        )),
        Err(_) => Ok(()),
    }
}

fn reserved_account(path: &str, id: &str) -> Result<(), ConfigError> {
    match AccountId::parse(id) {
        Ok(_) => Err(ConfigError::base(
            path,
            format!(
                "`{id}` is in the tenant account namespace (tenant-<8 hex>) the generator owns"
            ),
        )),
        Err(_) => Ok(()),
    }
}

/// Whether `text` nests objects and arrays deeper than `max` levels, counting brackets outside
/// strings (either quote, with escapes) and comments as JSON5 reads them. It never counts less
/// than the parser would reach: text the parser refuses may be counted loosely, since parsing
/// stops there anyway.
fn nests_deeper_than(text: &str, max: usize) -> bool {
    let line_end = |c: char| matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}');
    let mut depth = 0usize;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' | '[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            '}' | ']' => depth = depth.saturating_sub(1),
            '"' | '\'' => {
                while let Some(s) = chars.next() {
                    if s == '\\' {
                        chars.next();
                    } else if s == c || s == '\n' || s == '\r' {
                        // The closing quote, or a line break the parser refuses in a string.
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                for s in chars.by_ref() {
                    if line_end(s) {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut star = false;
                for s in chars.by_ref() {
                    if star && s == '/' {
                        break;
                    }
                    star = s == '*';
                }
            }
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conflict(text: &str) -> String {
        match BaseConfig::parse(text).unwrap_err() {
            ConfigError::BaseConflict { path, .. } => path,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn accepts_json5() {
        let base = BaseConfig::parse(
            "// operator settings\n{ gateway: { port: 18789, bind: 'loopback', }, /* c */ }",
        )
        .unwrap();
        assert_eq!(base.as_map()["gateway"]["port"], 18789);
    }

    #[test]
    fn refuses_deep_nesting_instead_of_overflowing_the_stack() {
        // The config_render fuzz target's reproducer (fuzz/seeds/config_render/deep_nesting):
        // the JSON5 parser recursed until the stack overflowed.
        let deep = format!("{{a: {}}}", "[".repeat(100_000));
        match BaseConfig::parse(&deep) {
            Err(ConfigError::BaseSyntax(m)) => assert!(m.contains("deeper than 128"), "{m}"),
            other => panic!("{other:?}"),
        }
        let deepest = format!(
            "{{a: {}{}}}",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        assert!(BaseConfig::parse(&deepest).is_ok());
        let one_more = format!("{{a: {}{}}}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(BaseConfig::parse(&one_more).is_err());
        // Brackets in strings and comments are not nesting; a comment ends at any line break.
        let b = "[".repeat(1000);
        let quoted = format!("{{a: '{b}', b: \"x\\\"{b}\", // {b}\n /* {b} */ c: 1}}");
        assert_eq!(BaseConfig::parse(&quoted).unwrap().as_map()["c"], 1);
        let after_comment = format!("{{a: 1, //\r b: {b}}}");
        assert!(matches!(
            BaseConfig::parse(&after_comment),
            Err(ConfigError::BaseSyntax(m)) if m.contains("deeper")
        ));
    }

    #[test]
    fn rejects_syntax_errors_and_non_objects() {
        assert!(matches!(
            BaseConfig::parse("{ gateway: "),
            Err(ConfigError::BaseSyntax(_))
        ));
        assert!(matches!(
            BaseConfig::parse("[1, 2]"),
            Err(ConfigError::BaseSyntax(_))
        ));
    }

    #[test]
    fn refuses_generator_owned_keys_by_path() {
        assert_eq!(
            conflict("{agents: {ownership: 'explicit'}}"),
            "agents.ownership"
        );
        assert_eq!(conflict("{session: {dmScope: 'main'}}"), "session.dmScope");
        assert_eq!(
            conflict("{agents: {entries: {'agent-0badcafe': {}}}}"),
            "agents.entries.agent-0badcafe"
        );
        assert_eq!(
            conflict("{agents: {list: [{id: 'ops'}, {id: 'agent-0badcafe'}]}}"),
            "agents.list.1.id"
        );
        assert_eq!(
            conflict(
                "{bindings: [{agentId: 'ops', match: {channel: 'telegram', accountId: 'tenant-0badcafe'}}]}"
            ),
            "bindings.0.match.accountId"
        );
        assert_eq!(
            conflict("{bindings: [{agentId: 'agent-0badcafe', match: {channel: 'telegram'}}]}"),
            "bindings.0.agentId"
        );
        assert_eq!(
            conflict("{channels: {telegram: {accounts: {'tenant-0badcafe': {}}}}}"),
            "channels.telegram.accounts.tenant-0badcafe"
        );
        assert_eq!(conflict("{channels: {slack: []}}"), "channels.slack");
        assert_eq!(conflict("{bindings: {}}"), "bindings");
        assert_eq!(conflict("{agents: {defaults: 1}}"), "agents.defaults");
    }
}
