//! How the gateway config is rendered by default (`SAAS_CONFIG_*`, `SAAS_GATEWAY_*`): read into
//! `tenant_configgen::RenderOptions` and validated (a base config file is read and checked now,
//! at start).

use tenant_configgen::{BaseConfig, ConfigError, RenderOptions};
use tenant_core::Secret;

use super::error::SettingsError;
use super::parse::parse;

/// The render options from the environment.
pub(super) fn render_options(
    get: &impl Fn(&str) -> Option<String>,
    gateway_token: Option<&Secret>,
) -> Result<RenderOptions, SettingsError> {
    let defaults = RenderOptions::default();
    let base = match get("SAAS_GATEWAY_BASE_CONFIG") {
        None => None,
        Some(path) => {
            let var = "SAAS_GATEWAY_BASE_CONFIG";
            let text = std::fs::read_to_string(path.trim()).map_err(|e| SettingsError {
                var,
                message: format!("cannot read {}: {e}", path.trim()),
            })?;
            Some(BaseConfig::parse(&text).map_err(|e| SettingsError {
                var,
                message: e.to_string(),
            })?)
        }
    };
    let opts = RenderOptions {
        dialect: parse(get, "SAAS_CONFIG_DIALECT", defaults.dialect)?,
        secrets: parse(get, "SAAS_CONFIG_SECRETS", defaults.secrets)?,
        workspace_root: get("SAAS_GATEWAY_WORKSPACE_ROOT").unwrap_or(defaults.workspace_root),
        agent_dir_root: get("SAAS_GATEWAY_AGENT_DIR_ROOT").unwrap_or(defaults.agent_dir_root),
        whatsapp_auth_root: get("SAAS_GATEWAY_WHATSAPP_ROOT")
            .unwrap_or(defaults.whatsapp_auth_root),
        base,
        layout: defaults.layout,
        bridge: super::bridge::from_lookup(get, gateway_token)?,
    };
    opts.validate().map_err(|e| SettingsError {
        var: match &e {
            ConfigError::InvalidOption {
                option: "bridge.plugin_path",
                ..
            } => "SAAS_GATEWAY_BRIDGE_PATH",
            ConfigError::InvalidOption {
                option: "bridge.url",
                ..
            } => "SAAS_PUBLIC_URL",
            ConfigError::BaseConflict { path, .. } if path.starts_with("plugins") => {
                "SAAS_GATEWAY_BASE_CONFIG"
            }
            _ => "SAAS_CONFIG_*",
        },
        message: e.to_string(),
    })?;
    Ok(opts)
}
