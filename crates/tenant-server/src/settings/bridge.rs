//! The bridge plugin's settings: `SAAS_GATEWAY_BRIDGE_PATH` and `SAAS_PUBLIC_URL` (both or
//! neither), with `SAAS_GATEWAY_TOKEN` as the token the plugin sends (see `docs/gateway.md`).

use tenant_configgen::BridgeOptions;
use tenant_core::Secret;

use crate::settings::SettingsError;

/// The bridge plugin's options: both `SAAS_GATEWAY_BRIDGE_PATH` and `SAAS_PUBLIC_URL`, or
/// neither; the token is `SAAS_GATEWAY_TOKEN` (a generated one is stored only as a hash, so it
/// cannot be rendered).
pub(crate) fn from_lookup(
    get: &impl Fn(&str) -> Option<String>,
    gateway_token: Option<&Secret>,
) -> Result<Option<BridgeOptions>, SettingsError> {
    let path = get("SAAS_GATEWAY_BRIDGE_PATH").map(|p| p.trim().to_owned());
    let url = get("SAAS_PUBLIC_URL").map(|u| u.trim().to_owned());
    let (plugin_path, url) = match (path, url) {
        (None, None) => return Ok(None),
        (Some(p), Some(u)) => (p, u),
        (Some(_), None) => {
            return Err(SettingsError {
                var: "SAAS_PUBLIC_URL",
                message: "is needed with SAAS_GATEWAY_BRIDGE_PATH: the URL the gateway's bridge posts events to".into(),
            });
        }
        (None, Some(_)) => {
            return Err(SettingsError {
                var: "SAAS_GATEWAY_BRIDGE_PATH",
                message: "is needed with SAAS_PUBLIC_URL: where the bridge plugin is installed on the gateway host".into(),
            });
        }
    };
    let Some(token) = gateway_token else {
        return Err(SettingsError {
            var: "SAAS_GATEWAY_TOKEN",
            message: "is needed with SAAS_GATEWAY_BRIDGE_PATH: the bridge authenticates with it, and a generated gateway token is stored only as a hash".into(),
        });
    };
    Ok(Some(BridgeOptions {
        plugin_path,
        url,
        token: Some(token.clone()),
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use crate::settings::{Settings, SettingsError};

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn the_bridge_needs_its_path_url_and_the_gateway_token() {
        let token = "msgw_a_gateway_token_that_is_long_enough_01";
        assert!(settings(&[]).unwrap().render.bridge.is_none());
        let s = settings(&[
            (
                "SAAS_GATEWAY_BRIDGE_PATH",
                "/opt/moltbot-saas/openclaw-bridge",
            ),
            ("SAAS_PUBLIC_URL", "https://saas.example.com"),
            ("SAAS_GATEWAY_TOKEN", token),
        ])
        .unwrap();
        let bridge = s.render.bridge.as_ref().unwrap();
        assert_eq!(bridge.plugin_path, "/opt/moltbot-saas/openclaw-bridge");
        assert_eq!(bridge.url, "https://saas.example.com");
        assert_eq!(
            bridge.token.as_ref().map(tenant_core::Secret::expose),
            Some(token)
        );
        assert!(!format!("{s:?}").contains(token));
        let err = |vars: &[(&str, &str)]| settings(vars).unwrap_err().var;
        assert_eq!(
            err(&[
                ("SAAS_GATEWAY_BRIDGE_PATH", "/opt/b"),
                ("SAAS_GATEWAY_TOKEN", token)
            ]),
            "SAAS_PUBLIC_URL"
        );
        assert_eq!(
            err(&[
                ("SAAS_PUBLIC_URL", "https://x"),
                ("SAAS_GATEWAY_TOKEN", token)
            ]),
            "SAAS_GATEWAY_BRIDGE_PATH"
        );
        assert_eq!(
            err(&[
                ("SAAS_GATEWAY_BRIDGE_PATH", "/opt/b"),
                ("SAAS_PUBLIC_URL", "https://x")
            ]),
            "SAAS_GATEWAY_TOKEN"
        );
        assert_eq!(
            err(&[
                ("SAAS_GATEWAY_BRIDGE_PATH", "opt/b"),
                ("SAAS_PUBLIC_URL", "https://x"),
                ("SAAS_GATEWAY_TOKEN", token)
            ]),
            "SAAS_GATEWAY_BRIDGE_PATH"
        );
        assert_eq!(
            err(&[
                ("SAAS_GATEWAY_BRIDGE_PATH", "/opt/b"),
                ("SAAS_PUBLIC_URL", "saas.example.com"),
                ("SAAS_GATEWAY_TOKEN", token)
            ]),
            "SAAS_PUBLIC_URL"
        );
    }
}
