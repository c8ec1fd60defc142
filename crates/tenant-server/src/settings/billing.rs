//! Settings of Stripe billing (`SAAS_STRIPE_*`, `SAAS_BILLING_*`), read with the rest of
//! [`crate::settings`] and documented in its table, `docs/configuration.md` and
//! `docs/billing.md`. Without `SAAS_STRIPE_SECRET_KEY` billing is off; with it, the webhook
//! signing secret is required too (subscriptions would never take effect without it).

use std::time::Duration;

use tenant_core::Secret;
use tenant_service::billing::{BillingConfig, DEFAULT_API_BASE, PriceMap};

use super::error::SettingsError;
use super::parse::parse_in;

/// Billing: off, or on with its Stripe settings.
#[derive(Debug, Clone)]
pub struct BillingSettings {
    /// `None`: billing is off (every billing route answers 503 `billing_disabled`).
    pub config: Option<BillingConfig>,
    /// How often the sweep looks for tenants whose grace period ran out.
    pub sweep: Duration,
}

fn secret(get: &impl Fn(&str) -> Option<String>, var: &'static str) -> Option<Secret> {
    get(var)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .map(Secret::new)
}

/// Reads the group.
pub(super) fn from_lookup(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<BillingSettings, SettingsError> {
    let sweep = Duration::from_secs(parse_in(get, "SAAS_BILLING_SWEEP_SECS", 60, 1..=86_400)?);
    let grace_days: u64 = parse_in(get, "SAAS_BILLING_GRACE_DAYS", 7, 0..=90)?;
    let grace = match get("SAAS_BILLING_GRACE_SECS") {
        // Finer than days, for trying the flow out; wins over the days.
        Some(_) => Duration::from_secs(parse_in(get, "SAAS_BILLING_GRACE_SECS", 0, 0..=7_776_000)?),
        None => Duration::from_secs(grace_days * 86_400),
    };
    let timeout = Duration::from_millis(parse_in(
        get,
        "SAAS_STRIPE_TIMEOUT_MS",
        10_000,
        100..=120_000,
    )?);
    let Some(secret_key) = secret(get, "SAAS_STRIPE_SECRET_KEY") else {
        return Ok(BillingSettings {
            config: None,
            sweep,
        });
    };
    let Some(webhook_secret) = secret(get, "SAAS_STRIPE_WEBHOOK_SECRET") else {
        return Err(SettingsError {
            var: "SAAS_STRIPE_WEBHOOK_SECRET",
            message: "required with SAAS_STRIPE_SECRET_KEY: the webhook endpoint's signing secret (whsec_…)".into(),
        });
    };
    let api_base = get("SAAS_STRIPE_API_BASE")
        .map(|v| v.trim().trim_end_matches('/').to_owned())
        .unwrap_or_else(|| DEFAULT_API_BASE.to_owned());
    if !(api_base.starts_with("https://") || api_base.starts_with("http://")) {
        return Err(SettingsError {
            var: "SAAS_STRIPE_API_BASE",
            message: format!("`{api_base}` is not an http(s) URL"),
        });
    }
    let prices =
        PriceMap::parse(&get("SAAS_STRIPE_PRICES").unwrap_or_default()).map_err(|message| {
            SettingsError {
                var: "SAAS_STRIPE_PRICES",
                message,
            }
        })?;
    if prices.is_empty() {
        return Err(SettingsError {
            var: "SAAS_STRIPE_PRICES",
            message: "required with SAAS_STRIPE_SECRET_KEY: `price_id=plan,…` (which Stripe price grants which plan)".into(),
        });
    }
    Ok(BillingSettings {
        config: Some(BillingConfig {
            secret_key,
            webhook_secret,
            api_base,
            prices,
            grace,
            timeout,
        }),
        sweep,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<BillingSettings, SettingsError> {
        from_lookup(&|k: &str| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn off_without_a_key_and_complete_with_one() {
        assert!(read(&[]).unwrap().config.is_none());
        let err = read(&[("SAAS_STRIPE_SECRET_KEY", "sk_test_x")]).unwrap_err();
        assert_eq!(err.var, "SAAS_STRIPE_WEBHOOK_SECRET");
        let err = read(&[
            ("SAAS_STRIPE_SECRET_KEY", "sk_test_x"),
            ("SAAS_STRIPE_WEBHOOK_SECRET", "whsec_x"),
        ])
        .unwrap_err();
        assert_eq!(err.var, "SAAS_STRIPE_PRICES");
        let s = read(&[
            ("SAAS_STRIPE_SECRET_KEY", "sk_test_verysecret"),
            ("SAAS_STRIPE_WEBHOOK_SECRET", "whsec_verysecret"),
            ("SAAS_STRIPE_PRICES", "price_a=pro"),
            ("SAAS_BILLING_GRACE_DAYS", "3"),
        ])
        .unwrap();
        let config = s.config.unwrap();
        assert_eq!(config.api_base, DEFAULT_API_BASE);
        assert_eq!(config.grace, Duration::from_secs(3 * 86_400));
        let shown = format!("{config:?}");
        assert!(!shown.contains("verysecret"), "{shown}");
    }
}
