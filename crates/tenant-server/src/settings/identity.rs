//! Settings of user authentication (`SAAS_JWT_SECRET`, `SAAS_*_TOKEN_TTL_SECS`, `SAAS_OIDC_*`):
//! read from the environment into [`IdentitySettings`], the identity layer's own configuration.
//! Documented in [`crate::settings`]' table and in `docs/configuration.md`.

use std::collections::HashMap;

use tenant_core::Secret;
use tenant_service::identity::{IdentitySettings, MappedRole, OidcSettings};

use super::error::SettingsError;
use super::parse::parse_in;

fn err(var: &'static str, message: impl Into<String>) -> SettingsError {
    SettingsError {
        var,
        message: message.into(),
    }
}

fn parse_mapped(v: &str) -> Option<MappedRole> {
    match v {
        "operator" => Some(MappedRole::Operator),
        other => other.parse().ok().map(MappedRole::Tenant),
    }
}

fn role_map(raw: Option<String>) -> Result<HashMap<String, MappedRole>, SettingsError> {
    let var = "SAAS_OIDC_ROLE_MAP";
    let mut map: HashMap<String, MappedRole> = ["owner", "admin", "member", "operator"]
        .into_iter()
        .filter_map(|r| parse_mapped(r).map(|m| (r.to_owned(), m)))
        .collect();
    let Some(raw) = raw else { return Ok(map) };
    map.clear();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (from, to) = pair
            .split_once('=')
            .ok_or_else(|| err(var, "entries look like `idp-value=role`, comma-separated"))?;
        let role = parse_mapped(to.trim())
            .ok_or_else(|| err(var, "roles are owner, admin, member or operator"))?;
        map.insert(from.trim().to_owned(), role);
    }
    Ok(map)
}

/// Reads the identity settings through `get` (which already drops empty values).
pub fn from_lookup(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<IdentitySettings, SettingsError> {
    let jwt_secret = match get("SAAS_JWT_SECRET") {
        Some(s) if s.len() < 32 => {
            return Err(err("SAAS_JWT_SECRET", "must be at least 32 bytes"));
        }
        other => other.map(Secret::new),
    };
    let defaults = IdentitySettings::default();
    let oidc = match get("SAAS_OIDC_ISSUER") {
        None => None,
        Some(issuer) => {
            let need = |var: &'static str| {
                get(var).ok_or_else(|| err(var, "required when SAAS_OIDC_ISSUER is set"))
            };
            let jwks_url = need("SAAS_OIDC_JWKS_URL")?;
            if !(jwks_url.starts_with("http://") || jwks_url.starts_with("https://")) {
                return Err(err("SAAS_OIDC_JWKS_URL", "must be an http(s) URL"));
            }
            Some(OidcSettings {
                issuer: issuer.trim().to_owned(),
                audience: need("SAAS_OIDC_AUDIENCE")?.trim().to_owned(),
                jwks_url: jwks_url.trim().to_owned(),
                tenant_claim: get("SAAS_OIDC_TENANT_CLAIM").unwrap_or_else(|| "tenant_id".into()),
                role_claim: get("SAAS_OIDC_ROLE_CLAIM").unwrap_or_else(|| "role".into()),
                role_map: role_map(get("SAAS_OIDC_ROLE_MAP"))?,
            })
        }
    };
    Ok(IdentitySettings {
        jwt_secret,
        access_token_ttl_secs: parse_in::<u64>(
            get,
            "SAAS_ACCESS_TOKEN_TTL_SECS",
            defaults.access_token_ttl_secs,
            60..=24 * 3600,
        )?,
        refresh_token_ttl_secs: parse_in::<u64>(
            get,
            "SAAS_REFRESH_TOKEN_TTL_SECS",
            defaults.refresh_token_ttl_secs,
            300..=365 * 24 * 3600,
        )?,
        oidc,
    })
}

#[cfg(test)]
mod tests {
    use tenant_core::Role;

    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<IdentitySettings, SettingsError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        from_lookup(&|k: &str| map.get(k).cloned())
    }

    #[test]
    fn defaults_and_errors() {
        let s = read(&[]).unwrap();
        assert_eq!(s.access_token_ttl_secs, 900);
        assert!(s.oidc.is_none());
        assert_eq!(
            read(&[("SAAS_JWT_SECRET", "short")]).unwrap_err().var,
            "SAAS_JWT_SECRET"
        );
        assert_eq!(
            read(&[("SAAS_OIDC_ISSUER", "https://idp")])
                .unwrap_err()
                .var,
            "SAAS_OIDC_JWKS_URL"
        );
        let s = read(&[
            ("SAAS_OIDC_ISSUER", "https://idp"),
            ("SAAS_OIDC_JWKS_URL", "https://idp/jwks"),
            ("SAAS_OIDC_AUDIENCE", "saas"),
            ("SAAS_OIDC_ROLE_MAP", "Admins=admin, Staff=operator"),
        ])
        .unwrap();
        let oidc = s.oidc.unwrap();
        assert_eq!(oidc.tenant_claim, "tenant_id");
        assert_eq!(oidc.role_map["Admins"], MappedRole::Tenant(Role::Admin));
        assert_eq!(oidc.role_map["Staff"], MappedRole::Operator);
        assert!(!oidc.role_map.contains_key("owner"));
        assert_eq!(
            read(&[
                ("SAAS_OIDC_ISSUER", "https://idp"),
                ("SAAS_OIDC_JWKS_URL", "https://idp/jwks"),
                ("SAAS_OIDC_AUDIENCE", "saas"),
                ("SAAS_OIDC_ROLE_MAP", "x=root"),
            ])
            .unwrap_err()
            .var,
            "SAAS_OIDC_ROLE_MAP"
        );
    }
}
