//! The dashboard's settings: the base domain of per-tenant hosts, the proxies trusted to name
//! the host, and whether session cookies are `Secure`.

use std::net::IpAddr;

use super::error::SettingsError;
use super::parse::parse;

/// How the dashboard and the tenant portal are served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiSettings {
    /// `SAAS_BASE_DOMAIN`: with `example.com`, `{slug}.example.com` is a tenant's portal and
    /// `example.com` / `admin.example.com` the operators' dashboard. `None`: every host serves
    /// the dashboard, and the portal finds the tenant from the logged-in user.
    pub base_domain: Option<String>,
    /// `SAAS_TRUSTED_PROXIES`: peers whose `X-Forwarded-Host` is believed. Empty: the `Host` header alone names the host.
    pub trusted_proxies: Vec<IpAddr>,
    /// `SAAS_UI_SECURE_COOKIES`: mark the session and CSRF cookies `Secure` (default `true`;
    /// `false` only for plain-HTTP development on a host that is not `localhost`).
    pub secure_cookies: bool,
}

impl Default for UiSettings {
    fn default() -> Self {
        Self {
            base_domain: None,
            trusted_proxies: Vec::new(),
            secure_cookies: true,
        }
    }
}

/// Reads the dashboard's settings.
pub(super) fn from_lookup(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<UiSettings, SettingsError> {
    let base_domain = get("SAAS_BASE_DOMAIN")
        .map(|d| {
            let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
            let valid = !d.is_empty()
                && d.len() <= 200
                && d.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if valid {
                Ok(d)
            } else {
                Err(SettingsError {
                    var: "SAAS_BASE_DOMAIN",
                    message: format!("`{d}` is not a domain name"),
                })
            }
        })
        .transpose()?;
    let trusted_proxies = get("SAAS_TRUSTED_PROXIES")
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<IpAddr>().map_err(|_| SettingsError {
                        var: "SAAS_TRUSTED_PROXIES",
                        message: format!("`{s}` is not an IP address"),
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    Ok(UiSettings {
        base_domain,
        trusted_proxies,
        secure_cookies: parse(get, "SAAS_UI_SECURE_COOKIES", true)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<UiSettings, SettingsError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        from_lookup(&|k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults_and_values() {
        assert_eq!(read(&[]).unwrap(), UiSettings::default());
        let s = read(&[
            ("SAAS_BASE_DOMAIN", "Example.COM."),
            ("SAAS_TRUSTED_PROXIES", "10.0.0.1, ::1"),
            ("SAAS_UI_SECURE_COOKIES", "false"),
        ])
        .unwrap();
        assert_eq!(s.base_domain.as_deref(), Some("example.com"));
        assert_eq!(s.trusted_proxies.len(), 2);
        assert!(!s.secure_cookies);
        assert_eq!(
            read(&[("SAAS_BASE_DOMAIN", "exa mple.com")])
                .unwrap_err()
                .var,
            "SAAS_BASE_DOMAIN"
        );
        assert_eq!(
            read(&[("SAAS_TRUSTED_PROXIES", "10.0.0.0/8")])
                .unwrap_err()
                .var,
            "SAAS_TRUSTED_PROXIES"
        );
    }
}
