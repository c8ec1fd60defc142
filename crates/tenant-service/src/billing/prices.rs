//! The price → plan map (`SAAS_STRIPE_PRICES`): which Stripe price grants which plan, and which
//! price a Checkout for a plan sells.
//!
//! Format: comma-separated `price_id=plan` pairs, e.g.
//! `price_1Starter=starter,price_1Pro=pro,price_1ProYearly=pro`. A plan may have several prices
//! (monthly, yearly): every one of them grants it, and Checkout sells the first one listed.
//! `free` cannot be sold (it is what a tenant without a subscription has).

use tenant_core::Plan;

/// Which Stripe price grants which plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PriceMap {
    entries: Vec<(String, Plan)>,
}

impl PriceMap {
    /// Parses `price_id=plan,…`; says what is wrong with the first bad entry.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut entries: Vec<(String, Plan)> = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let Some((price, plan)) = item.split_once('=') else {
                return Err(format!("`{item}` is not `price_id=plan`"));
            };
            let (price, plan) = (price.trim(), plan.trim());
            if price.is_empty()
                || price.len() > 255
                || !price
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(format!(
                    "`{price}` is not a Stripe price id (letters, digits, `_`, `-`)"
                ));
            }
            let plan: Plan = plan.parse().map_err(|_| {
                format!(
                    "unknown plan `{plan}` for price `{price}` (one of: {})",
                    paid_plans()
                )
            })?;
            if plan == Plan::Free {
                return Err(format!("price `{price}`: the free plan cannot be sold"));
            }
            if entries.iter().any(|(p, _)| p == price) {
                return Err(format!("price `{price}` is listed twice"));
            }
            entries.push((price.to_owned(), plan));
        }
        Ok(Self { entries })
    }

    /// The plan a price grants, if it is in the map.
    pub fn plan_of(&self, price_id: &str) -> Option<Plan> {
        self.entries
            .iter()
            .find(|(p, _)| p == price_id)
            .map(|(_, plan)| *plan)
    }

    /// The price Checkout sells for a plan (the first one listed).
    pub fn price_for(&self, plan: Plan) -> Option<&str> {
        self.entries
            .iter()
            .find(|(_, p)| *p == plan)
            .map(|(price, _)| price.as_str())
    }

    /// The plans that have a price, in plan order.
    pub fn plans(&self) -> Vec<Plan> {
        Plan::ALL
            .iter()
            .copied()
            .filter(|p| self.price_for(*p).is_some())
            .collect()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn paid_plans() -> String {
    Plan::ALL
        .iter()
        .filter(|p| **p != Plan::Free)
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_may_have_several_prices_and_checkout_sells_the_first() {
        let map = PriceMap::parse(" price_a=starter, price_b=pro ,price_c=pro,").unwrap();
        assert_eq!(map.plan_of("price_c"), Some(Plan::Pro));
        assert_eq!(map.plan_of("price_x"), None);
        assert_eq!(map.price_for(Plan::Pro), Some("price_b"));
        assert_eq!(map.price_for(Plan::Enterprise), None);
        assert_eq!(map.plans(), [Plan::Starter, Plan::Pro]);
    }

    #[test]
    fn bad_entries_are_named() {
        for (text, needle) in [
            ("price_a", "not `price_id=plan`"),
            ("price_a=gold", "unknown plan `gold`"),
            ("price_a=free", "free plan"),
            ("price_a=pro,price_a=starter", "twice"),
            ("pr ice=pro", "not a Stripe price id"),
        ] {
            let err = PriceMap::parse(text).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
        assert!(PriceMap::parse("").unwrap().is_empty());
    }
}
