//! What to render: the gateway dialect, how secrets are carried, where agents keep their files.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::bridge::check_base;
use crate::{BaseConfig, BridgeOptions, ConfigError};

/// An option value that is not one of the accepted words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{option} must be one of: {expected} (got `{got}`)")]
pub struct ParseOptionError {
    /// The option, e.g. `dialect`.
    pub option: &'static str,
    /// The accepted words, comma-separated.
    pub expected: &'static str,
    /// What was given.
    pub got: String,
}

macro_rules! word_enum {
    ($(#[$doc:meta])* $name:ident, $option:literal { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in a stable order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as written in query strings and on the command line.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ParseOptionError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(ParseOptionError {
                        option: $option,
                        expected: concat!($($text, ", "),+),
                        got: s.to_owned(),
                    }),
                }
            }
        }
    };
}

word_enum!(
    /// The gateway release line the config is written for.
    Dialect, "dialect" {
        /// openclaw ≥ 2026.8: `agents.entries` keyed by agent id, `agents.ownership: "explicit"`.
        #[default]
        Current => "current",
        /// openclaw 2026.1.29 … 2026.7.x (the Moltbot era): `agents.list`.
        Legacy => "legacy",
    }
);

word_enum!(
    /// Which tenants one document carries.
    Mode, "mode" {
        /// Every active tenant, for one shared gateway.
        #[default]
        Combined => "combined",
        /// One tenant, for a gateway of its own.
        PerTenant => "per-tenant",
    }
);

word_enum!(
    /// How secret credential values reach the gateway.
    SecretsMode, "secrets" {
        /// The plain values are written into the document.
        #[default]
        Inline => "inline",
        /// The document holds `${VAR}` references; the values go to an env file.
        Env => "env",
        /// The document holds SecretRef objects (`{"source":"env",…}`) where the gateway accepts
        /// them and `${VAR}` elsewhere; the values go to an env file. Current dialect only.
        SecretRef => "secret-ref",
    }
);

word_enum!(
    /// How the JSON document is laid out. Both are canonical (keys sorted, byte-identical for
    /// equal input) and carry the same data; only whitespace differs.
    Layout, "layout" {
        /// No whitespace at all: exactly `serde_json::to_string` of itself, plus a final newline.
        /// What the server serves and writes: about half the bytes of `pretty`.
        #[default]
        Compact => "compact",
        /// Two-space indentation: exactly `serde_json::to_string_pretty` of itself, plus a final
        /// newline. For reading and reviewing (golden files, `config render --layout pretty`).
        Pretty => "pretty",
    }
);

/// Everything that shapes a rendered document besides the tenants.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderOptions {
    /// The gateway dialect.
    pub dialect: Dialect,
    /// How secrets are carried.
    pub secrets: SecretsMode,
    /// Agent workspaces live at `<workspace_root>/<agentId>`.
    pub workspace_root: String,
    /// Agent state lives at `<agent_dir_root>/<agentId>/agent`.
    pub agent_dir_root: String,
    /// WhatsApp link state lives at `<whatsapp_auth_root>/<accountId>`.
    pub whatsapp_auth_root: String,
    /// The operator's own settings (gateway, models, plugins, defaults), merged under the
    /// generated sections.
    pub base: Option<BaseConfig>,
    /// Compact (the default) or pretty JSON.
    pub layout: Layout,
    /// The gateway bridge plugin to enable, if any (see `bridge.rs`).
    pub bridge: Option<BridgeOptions>,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            dialect: Dialect::Current,
            secrets: SecretsMode::Inline,
            workspace_root: "/var/lib/openclaw/workspaces".to_owned(),
            agent_dir_root: "/var/lib/openclaw/agents".to_owned(),
            whatsapp_auth_root: "/var/lib/openclaw/whatsapp".to_owned(),
            base: None,
            layout: Layout::Compact,
            bridge: None,
        }
    }
}

impl RenderOptions {
    /// Checks the options against each other: the secrets mode must suit the dialect, every
    /// root must be a distinct absolute path without a trailing slash or control characters, the
    /// bridge's path, URL and token must be usable, and the base config must not set what the
    /// generator owns (see `BaseConfig`, and `bridge.rs` for the plugin's keys).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.dialect == Dialect::Legacy && self.secrets == SecretsMode::SecretRef {
            return Err(ConfigError::UnsupportedSecretsMode {
                secrets: self.secrets.as_str(),
                dialect: self.dialect.as_str(),
            });
        }
        let roots = [
            ("workspace_root", &self.workspace_root),
            ("agent_dir_root", &self.agent_dir_root),
            ("whatsapp_auth_root", &self.whatsapp_auth_root),
        ];
        for (option, root) in roots {
            let reason = if !root.starts_with('/') {
                "must be an absolute path"
            } else if root.len() > 1 && root.ends_with('/') {
                "must not end with `/`"
            } else if root == "/" {
                "must not be the filesystem root"
            } else if root.chars().any(char::is_control) {
                "must not contain control characters"
            } else {
                continue;
            };
            return Err(ConfigError::InvalidOption {
                option,
                reason: reason.to_owned(),
            });
        }
        for (i, (a, ra)) in roots.iter().enumerate() {
            for (b, rb) in &roots[i + 1..] {
                if ra == rb {
                    return Err(ConfigError::InvalidOption {
                        option: b,
                        reason: format!("must differ from `{a}`"),
                    });
                }
            }
        }
        if let Some(bridge) = &self.bridge {
            bridge.validate()?;
            if let Some(base) = &self.base {
                check_base(base)?;
            }
        }
        if let Some(base) = &self.base {
            base.check_against(
                self.dialect,
                &[
                    &self.workspace_root,
                    &self.agent_dir_root,
                    &self.whatsapp_auth_root,
                ],
            )?;
        }
        Ok(())
    }
}

/// The base config's rules that depend on the render options (here, not in `base`, so the base
/// config knows nothing of dialects).
impl BaseConfig {
    /// Checks what depends on the render options: the dialect's agent shape, and that no base
    /// agent keeps its files under the generator's roots.
    pub(crate) fn check_against(
        &self,
        dialect: Dialect,
        roots: &[&str],
    ) -> Result<(), ConfigError> {
        let Some(agents) = self.section("agents") else {
            return Ok(());
        };
        let (other, own) = match dialect {
            Dialect::Current => ("list", "entries"),
            Dialect::Legacy => ("entries", "list"),
        };
        if agents.contains_key(other) {
            return Err(ConfigError::base(
                format!("agents.{other}"),
                format!("belongs to the other dialect; the {dialect} dialect uses `agents.{own}`"),
            ));
        }
        let entries: Vec<(String, &Value)> = match agents.get(own) {
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| (format!("agents.entries.{k}"), v))
                .collect(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("agents.list.{i}"), v))
                .collect(),
            _ => Vec::new(),
        };
        for (path, entry) in entries {
            for field in ["workspace", "agentDir"] {
                let Some(dir) = entry.get(field).and_then(Value::as_str) else {
                    continue;
                };
                let inside = roots.iter().any(|root| {
                    dir.strip_prefix(root)
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
                });
                if inside {
                    return Err(ConfigError::base(
                        format!("{path}.{field}"),
                        "lies under a directory root the generator gives to tenants",
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for d in Dialect::ALL {
            assert_eq!(d.as_str().parse::<Dialect>().unwrap(), *d);
        }
        for m in Mode::ALL {
            assert_eq!(m.as_str().parse::<Mode>().unwrap(), *m);
        }
        for s in SecretsMode::ALL {
            assert_eq!(s.as_str().parse::<SecretsMode>().unwrap(), *s);
        }
        assert_eq!("per-tenant".parse::<Mode>().unwrap(), Mode::PerTenant);
        assert_eq!(Dialect::default(), Dialect::Current);
        let e = "Legacy".parse::<Dialect>().unwrap_err();
        assert_eq!(e.option, "dialect");
        assert!(e.to_string().contains("current, legacy"), "{e}");
    }

    #[test]
    fn secret_refs_are_refused_for_legacy() {
        let opts = RenderOptions {
            dialect: Dialect::Legacy,
            secrets: SecretsMode::SecretRef,
            ..RenderOptions::default()
        };
        let e = opts.validate().unwrap_err();
        assert!(matches!(e, ConfigError::UnsupportedSecretsMode { .. }));
        assert!(e.to_string().contains("legacy"), "{e}");
        let env = RenderOptions {
            secrets: SecretsMode::Env,
            ..opts
        };
        assert!(env.validate().is_ok());
    }

    #[test]
    fn roots_must_be_distinct_absolute_paths() {
        assert!(RenderOptions::default().validate().is_ok());
        let bad = |f: fn(&mut RenderOptions)| {
            let mut o = RenderOptions::default();
            f(&mut o);
            o.validate().unwrap_err()
        };
        let e = bad(|o| o.workspace_root = "var/ws".into());
        assert!(matches!(
            e,
            ConfigError::InvalidOption {
                option: "workspace_root",
                ..
            }
        ));
        let e = bad(|o| o.agent_dir_root = "/srv/agents/".into());
        assert!(matches!(
            e,
            ConfigError::InvalidOption {
                option: "agent_dir_root",
                ..
            }
        ));
        let e = bad(|o| o.whatsapp_auth_root = "/".into());
        assert!(matches!(
            e,
            ConfigError::InvalidOption {
                option: "whatsapp_auth_root",
                ..
            }
        ));
        let e = bad(|o| o.agent_dir_root = o.workspace_root.clone());
        assert!(matches!(
            e,
            ConfigError::InvalidOption {
                option: "agent_dir_root",
                ..
            }
        ));
        let e = bad(|o| o.workspace_root = "/srv/\u{7}".into());
        assert!(matches!(
            e,
            ConfigError::InvalidOption {
                option: "workspace_root",
                ..
            }
        ));
    }

    #[test]
    fn operator_agents_outside_the_namespace_are_fine() {
        let base = BaseConfig::parse(
            "{agents: {entries: {ops: {workspace: '/srv/ops'}}}, bindings: [{agentId: 'ops', match: {channel: 'telegram', accountId: 'ops-bot'}}], channels: {telegram: {accounts: {'ops-bot': {}}}}}",
        )
        .unwrap();
        assert!(
            base.check_against(Dialect::Current, &["/var/lib/openclaw/workspaces"])
                .is_ok()
        );
        let e = base.check_against(Dialect::Legacy, &[]).unwrap_err();
        assert!(
            matches!(e, ConfigError::BaseConflict { ref path, .. } if path == "agents.entries")
        );
        let e = base.check_against(Dialect::Current, &["/srv"]).unwrap_err();
        assert!(
            matches!(e, ConfigError::BaseConflict { ref path, .. } if path == "agents.entries.ops.workspace")
        );
        assert!(base.check_against(Dialect::Current, &["/sr"]).is_ok());
    }
}
