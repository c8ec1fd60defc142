//! The gateway bridge: the OpenClaw plugin (`integrations/openclaw-bridge`) that reports
//! messages and sessions to the control plane, as the rendered document enables it.
//!
//! With [`BridgeOptions`] set, every document (both dialects, combined and per tenant) carries
//!
//! ```text
//! plugins.load.paths            [..the base's paths, "<plugin_path>"]
//! plugins.entries.moltbot-saas-bridge = {enabled: true, config: {token, url, ..the base's}}
//! ```
//!
//! The token follows the secrets mode like a channel credential: the plain value (`inline`), a
//! `"${MOLTBOT_SAAS_GATEWAY_TOKEN}"` reference (`env`) or a SecretRef to that variable
//! (`secret-ref`, which the plugin's manifest declares as a secret input), the value then going
//! to the env file. A document shown to someone who must not hold the gateway token (a tenant
//! reading its own document) is rendered with the token withheld: then it is a reference in
//! every mode (in `inline` mode, as in `env`), and no env file line carries it. The base may tune the plugin (`includeContent`, spool limits, timeouts in
//! `plugins.entries.moltbot-saas-bridge.config`) but not set what the generator writes, nor
//! switch plugins off or deny this one.

use serde_json::{Map, Value};
use tenant_core::Secret;

use crate::{BaseConfig, ConfigError};

/// The plugin's id: its manifest's `id` and its key under `plugins.entries`.
pub const BRIDGE_PLUGIN_ID: &str = "moltbot-saas-bridge";

/// The environment variable that carries the bridge's token in the `env` and `secret-ref`
/// modes.
pub const BRIDGE_TOKEN_VAR: &str = "MOLTBOT_SAAS_GATEWAY_TOKEN";

/// Where the gateway finds the bridge plugin and how it reaches the control plane.
#[derive(Debug, Clone, PartialEq)]
pub struct BridgeOptions {
    /// The plugin's directory on the gateway host (an absolute path), for `plugins.load.paths`.
    pub plugin_path: String,
    /// The control plane's base URL as the gateway reaches it; events go to `{url}/events`.
    pub url: String,
    /// The control plane's gateway token, which the plugin sends as its bearer token; `None`
    /// withholds it (the document refers to [`BRIDGE_TOKEN_VAR`] instead).
    pub token: Option<Secret>,
}

impl BridgeOptions {
    /// Checks the path, URL and token: an absolute path without a trailing slash, an `http(s)`
    /// URL with a host and without query, fragment or credentials, a token without whitespace.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |option, reason: &str| {
            Err(ConfigError::InvalidOption {
                option,
                reason: reason.to_owned(),
            })
        };
        let path = &self.plugin_path;
        if !path.starts_with('/') {
            return invalid("bridge.plugin_path", "must be an absolute path");
        }
        if path.len() > 1 && path.ends_with('/') {
            return invalid("bridge.plugin_path", "must not end with `/`");
        }
        if path == "/" || path.chars().any(char::is_control) {
            return invalid(
                "bridge.plugin_path",
                "must be a directory below `/` without control characters",
            );
        }
        let url = &self.url;
        let Some(rest) = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
        else {
            return invalid("bridge.url", "must start with http:// or https://");
        };
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() || host.contains('@') {
            return invalid("bridge.url", "must name a host, without credentials");
        }
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) || url.contains(['?', '#']) {
            return invalid(
                "bridge.url",
                "must not contain whitespace, a query or a fragment",
            );
        }
        if let Some(token) = &self.token {
            let token = token.expose();
            if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return invalid("bridge.token", "must be non-empty without whitespace");
            }
        }
        Ok(())
    }

    /// The same options with the token withheld.
    pub fn withholding_token(&self) -> Self {
        Self {
            token: None,
            ..self.clone()
        }
    }

    /// The URL without a trailing slash (the plugin appends `/events`).
    pub(crate) fn url(&self) -> &str {
        self.url.trim_end_matches('/')
    }
}

/// The keys of the plugin's entry and config the generator writes.
const OWNED_ENTRY: &[&str] = &["enabled"];
const OWNED_CONFIG: &[&str] = &["token", "url"];

/// Checks that the base leaves the bridge's keys alone and does not switch it off.
pub(crate) fn check_base(base: &BaseConfig) -> Result<(), ConfigError> {
    let Some(plugins) = base.as_map().get("plugins") else {
        return Ok(());
    };
    let plugins = object("plugins", plugins)?;
    if plugins.get("enabled") == Some(&Value::Bool(false)) {
        return Err(ConfigError::base(
            "plugins.enabled",
            "is false, which switches every plugin off, the bridge too; unset SAAS_GATEWAY_BRIDGE_PATH instead, or enable plugins",
        ));
    }
    if let Some(deny) = plugins.get("deny") {
        let named = deny
            .as_array()
            .is_some_and(|d| d.iter().any(|v| v.as_str() == Some(BRIDGE_PLUGIN_ID)));
        if named {
            return Err(ConfigError::base(
                "plugins.deny",
                format!("denies `{BRIDGE_PLUGIN_ID}`, which the generator enables"),
            ));
        }
    }
    if let Some(allow) = plugins.get("allow")
        && !allow.is_array()
    {
        return Err(ConfigError::base("plugins.allow", "must be an array"));
    }
    if let Some(load) = plugins.get("load") {
        let load = object("plugins.load", load)?;
        if let Some(paths) = load.get("paths")
            && !paths
                .as_array()
                .is_some_and(|p| p.iter().all(Value::is_string))
        {
            return Err(ConfigError::base(
                "plugins.load.paths",
                "must be an array of strings",
            ));
        }
    }
    let Some(entries) = plugins.get("entries") else {
        return Ok(());
    };
    let entries = object("plugins.entries", entries)?;
    let Some(entry) = entries.get(BRIDGE_PLUGIN_ID) else {
        return Ok(());
    };
    let at = format!("plugins.entries.{BRIDGE_PLUGIN_ID}");
    let entry = object(&at, entry)?;
    for key in OWNED_ENTRY {
        if entry.contains_key(*key) {
            return Err(owned(format!("{at}.{key}")));
        }
    }
    if let Some(config) = entry.get("config") {
        let config = object(&format!("{at}.config"), config)?;
        for key in OWNED_CONFIG {
            if config.contains_key(*key) {
                return Err(owned(format!("{at}.config.{key}")));
            }
        }
    }
    Ok(())
}

fn owned(path: String) -> ConfigError {
    ConfigError::base(
        path,
        "is set by the generator (SAAS_GATEWAY_BRIDGE_PATH, SAAS_PUBLIC_URL, the gateway token)",
    )
}

fn object<'v>(path: &str, v: &'v Value) -> Result<&'v Map<String, Value>, ConfigError> {
    v.as_object()
        .ok_or_else(|| ConfigError::base(path, "must be an object"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(path: &str, url: &str, token: &str) -> BridgeOptions {
        BridgeOptions {
            plugin_path: path.into(),
            url: url.into(),
            token: Some(Secret::new(token)),
        }
    }

    fn option_of(o: &BridgeOptions) -> &'static str {
        match o.validate() {
            Err(ConfigError::InvalidOption { option, .. }) => option,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn options_are_checked() {
        let good = opts("/opt/moltbot-bridge", "https://saas.example.com/", "msgw_x");
        assert!(good.validate().is_ok());
        assert_eq!(good.url(), "https://saas.example.com");
        assert!(
            opts("/b", "http://127.0.0.1:3000/api", "t")
                .validate()
                .is_ok()
        );
        for (o, option) in [
            (opts("b", "https://x", "t"), "bridge.plugin_path"),
            (opts("/b/", "https://x", "t"), "bridge.plugin_path"),
            (opts("/", "https://x", "t"), "bridge.plugin_path"),
            (opts("/b\n", "https://x", "t"), "bridge.plugin_path"),
            (opts("/b", "ftp://x", "t"), "bridge.url"),
            (opts("/b", "https://", "t"), "bridge.url"),
            (opts("/b", "https://u:p@x", "t"), "bridge.url"),
            (opts("/b", "https://x/?a=1", "t"), "bridge.url"),
            (opts("/b", "https://x /", "t"), "bridge.url"),
            (opts("/b", "https://x", ""), "bridge.token"),
            (opts("/b", "https://x", "a b"), "bridge.token"),
        ] {
            assert_eq!(option_of(&o), option, "{o:?}");
        }
        let e = opts("/b", "https://x", "secret value")
            .validate()
            .unwrap_err();
        assert!(!e.to_string().contains("secret value"), "{e}");
    }

    fn conflict(text: &str) -> String {
        match check_base(&BaseConfig::parse(text).unwrap()) {
            Err(ConfigError::BaseConflict { path, .. }) => path,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_base_may_tune_the_plugin_but_not_own_it() {
        let fine = BaseConfig::parse(
            "{plugins: {load: {paths: ['/opt/other']}, allow: ['telegram'], entries: {'moltbot-saas-bridge': {config: {includeContent: false, maxSpoolBytes: 1048576}}, other: {enabled: false}}}}",
        )
        .unwrap();
        assert!(check_base(&fine).is_ok());
        assert!(check_base(&BaseConfig::default()).is_ok());
        assert_eq!(conflict("{plugins: {enabled: false}}"), "plugins.enabled");
        assert_eq!(
            conflict("{plugins: {deny: ['moltbot-saas-bridge']}}"),
            "plugins.deny"
        );
        assert_eq!(conflict("{plugins: {allow: 'x'}}"), "plugins.allow");
        assert_eq!(conflict("{plugins: []}"), "plugins");
        assert_eq!(
            conflict("{plugins: {load: {paths: [1]}}}"),
            "plugins.load.paths"
        );
        assert_eq!(
            conflict("{plugins: {entries: {'moltbot-saas-bridge': {enabled: false}}}}"),
            "plugins.entries.moltbot-saas-bridge.enabled"
        );
        assert_eq!(
            conflict("{plugins: {entries: {'moltbot-saas-bridge': {config: {url: 'x'}}}}}"),
            "plugins.entries.moltbot-saas-bridge.config.url"
        );
        assert_eq!(
            conflict("{plugins: {entries: {'moltbot-saas-bridge': {config: {token: 'x'}}}}}"),
            "plugins.entries.moltbot-saas-bridge.config.token"
        );
        assert_eq!(
            conflict("{plugins: {entries: {'moltbot-saas-bridge': []}}}"),
            "plugins.entries.moltbot-saas-bridge"
        );
    }
}
