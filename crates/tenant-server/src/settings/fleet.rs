//! The gateway fleet's settings: the heartbeat lease and the plans whose tenants get a gateway
//! of their own (see `docs/fleet.md`).

use tenant_core::Plan;
use tenant_service::fleet::FleetConfig;

use super::error::SettingsError;
use super::parse::parse_in;

/// `SAAS_GATEWAY_LEASE_SECS` (5–3600, default 60) and `SAAS_DEDICATED_PLANS` (a comma-separated
/// list of plans, default none).
pub(super) fn fleet(get: &impl Fn(&str) -> Option<String>) -> Result<FleetConfig, SettingsError> {
    let lease = parse_in(get, "SAAS_GATEWAY_LEASE_SECS", 60u64, 5..=3600)?;
    let dedicated_plans = match get("SAAS_DEDICATED_PLANS") {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse::<Plan>().map_err(|_| SettingsError {
                    var: "SAAS_DEDICATED_PLANS",
                    message: format!("`{p}` is not a plan (free, starter, pro, enterprise)"),
                })
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(FleetConfig {
        lease: std::time::Duration::from_secs(lease),
        dedicated_plans,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<FleetConfig, SettingsError> {
        fleet(&|k: &str| {
            pairs
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn defaults_and_lists() {
        let d = read(&[]).unwrap();
        assert_eq!(d.lease.as_secs(), 60);
        assert!(d.dedicated_plans.is_empty());
        let s = read(&[
            ("SAAS_DEDICATED_PLANS", "enterprise, pro"),
            ("SAAS_GATEWAY_LEASE_SECS", "30"),
        ])
        .unwrap();
        assert_eq!(s.dedicated_plans, vec![Plan::Enterprise, Plan::Pro]);
        assert_eq!(s.lease.as_secs(), 30);
        assert!(read(&[("SAAS_DEDICATED_PLANS", "gold")]).is_err());
        assert!(read(&[("SAAS_GATEWAY_LEASE_SECS", "1")]).is_err());
    }
}
