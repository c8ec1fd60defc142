//! The gateway fleet's settings: the heartbeat lease and its safety margin, failover, and the
//! plans whose tenants get a gateway of their own (see `docs/fleet.md`).

use std::time::Duration;

use tenant_core::Plan;
use tenant_service::fleet::{FleetConfig, default_margin};

use super::error::SettingsError;
use super::parse::parse_in;

/// `SAAS_GATEWAY_LEASE_SECS` (5–3600, default 60), `SAAS_GATEWAY_LEASE_MARGIN_SECS` (1–3600,
/// default `max(10, lease / 6)`), `SAAS_GATEWAY_FAILOVER` (`on`/`off`, default off) and
/// `SAAS_DEDICATED_PLANS` (a comma-separated list of plans, default none).
pub(super) fn fleet(get: &impl Fn(&str) -> Option<String>) -> Result<FleetConfig, SettingsError> {
    let lease = Duration::from_secs(parse_in(get, "SAAS_GATEWAY_LEASE_SECS", 60u64, 5..=3600)?);
    let margin = Duration::from_secs(parse_in(
        get,
        "SAAS_GATEWAY_LEASE_MARGIN_SECS",
        default_margin(lease).as_secs(),
        1..=3600,
    )?);
    let failover = match get("SAAS_GATEWAY_FAILOVER").as_deref().map(str::trim) {
        None | Some("off" | "false" | "0") => false,
        Some("on" | "true" | "1") => true,
        Some(_) => {
            return Err(SettingsError {
                var: "SAAS_GATEWAY_FAILOVER",
                message: "must be `on` or `off`".to_owned(),
            });
        }
    };
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
        lease,
        dedicated_plans,
        failover,
        margin,
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
        assert!(!d.failover);
        assert_eq!(d.margin.as_secs(), 10, "max(10 s, 60 s / 6)");
        let long = read(&[("SAAS_GATEWAY_LEASE_SECS", "600")]).unwrap();
        assert_eq!(long.margin.as_secs(), 100, "a sixth of a long lease");
        let on = read(&[
            ("SAAS_GATEWAY_FAILOVER", "on"),
            ("SAAS_GATEWAY_LEASE_MARGIN_SECS", "2"),
        ])
        .unwrap();
        assert!(on.failover);
        assert_eq!(on.margin.as_secs(), 2);
        assert!(read(&[("SAAS_GATEWAY_FAILOVER", "maybe")]).is_err());
        assert!(read(&[("SAAS_GATEWAY_LEASE_MARGIN_SECS", "0")]).is_err());
    }
}
