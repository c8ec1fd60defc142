//! Tenants: one customer of the operator, with its gateway identities, plan and status.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::reject_control_chars;
use crate::{AccountId, AgentId, Slug, TenantId, ValidationError, ValidationErrors};

/// A tenant's display name: trimmed, 1–200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct TenantName(String);

impl TenantName {
    /// The most characters (not bytes) a name may have.
    pub const MAX_CHARS: usize = 200;

    /// Trims and validates a name.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(ValidationError::new(
                "name",
                "required",
                "must not be empty",
            ));
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err(ValidationError::new(
                "name",
                "too_long",
                "must be at most 200 characters",
            ));
        }
        reject_control_chars("name", name)?;
        Ok(Self(name.to_owned()))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident, $field:literal { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in a stable order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as stored and as shown in the API.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::ValidationError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::ValidationError::new(
                        $field,
                        "invalid_value",
                        format!("must be one of: {}", [$($text),+].join(", ")),
                    )),
                }
            }
        }
    };
}
pub(crate) use string_enum;

string_enum!(
    /// The billing plan of a tenant.
    Plan, "plan" {
        /// The default plan.
        Free => "free",
        /// A small paid plan.
        Starter => "starter",
        /// A larger paid plan.
        Pro => "pro",
        /// Negotiated terms.
        Enterprise => "enterprise",
    }
);

string_enum!(
    /// Whether a tenant's agent is served by the gateway.
    TenantStatus, "status" {
        /// Served: its agent, accounts and bindings are in the gateway config.
        Active => "active",
        /// Kept but not served: left out of the gateway config.
        Suspended => "suspended",
    }
);

/// A tenant as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Primary key.
    pub id: TenantId,
    /// Display name.
    pub name: TenantName,
    /// Unique DNS-label handle.
    pub slug: Slug,
    /// The tenant's account id on the gateway, derived from `id`.
    pub account_id: AccountId,
    /// The tenant's agent id on the gateway, derived from `id`.
    pub agent_id: AgentId,
    /// Billing plan.
    pub plan: Plan,
    /// Active or suspended.
    pub status: TenantStatus,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// The calendar month (UTC, `YYYY-MM`) in which it used up its messages, if any: while that
    /// month lasts, its channel accounts are left out of the gateway config. A plan change
    /// clears it.
    pub quota_exceeded_period: Option<String>,
}

impl Tenant {
    /// Whether its message quota is used up in `period` (`YYYY-MM`, the current month).
    pub fn quota_exceeded_in(&self, period: &str) -> bool {
        self.quota_exceeded_period.as_deref() == Some(period)
    }
}

/// A validated request to create a tenant.
#[derive(Debug, Clone)]
pub struct NewTenant {
    /// Display name.
    pub name: TenantName,
    /// A slug the caller chose; `None` derives one from the name.
    pub slug: Option<Slug>,
    /// Billing plan.
    pub plan: Plan,
    /// An operator asks for a dedicated gateway, whatever the plan (`false`: the plan decides,
    /// through `SAAS_DEDICATED_PLANS`). Set after [`NewTenant::parse`], which leaves it `false`.
    pub dedicated: bool,
}

impl NewTenant {
    /// Validates raw input, collecting every problem.
    pub fn parse(
        name: &str,
        slug: Option<&str>,
        plan: Option<&str>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let name = errors.check(TenantName::parse(name));
        let slug = slug.map(|s| errors.check(Slug::parse(s)));
        let plan = errors.check(plan.map_or(Ok(Plan::Free), str::parse));
        errors.into_result()?;
        match (name, slug, plan) {
            (Some(name), slug, Some(plan)) => Ok(Self {
                name,
                slug: slug.flatten(),
                plan,
                dedicated: false,
            }),
            // Unreachable: every `None` above recorded an error.
            _ => Err(ValidationErrors::default()),
        }
    }

    /// Builds the tenant under a given id at a given time. A derived slug that turns out to be
    /// taken is replaced by the store with [`Slug::disambiguated`].
    pub fn into_tenant(self, id: TenantId, now: DateTime<Utc>) -> Tenant {
        let slug = self
            .slug
            .unwrap_or_else(|| Slug::derive(self.name.as_str(), &id));
        Tenant {
            account_id: AccountId::for_tenant(&id),
            agent_id: AgentId::for_tenant(&id),
            id,
            name: self.name,
            slug,
            plan: self.plan,
            status: TenantStatus::Active,
            created_at: now,
            updated_at: now,
            quota_exceeded_period: None,
        }
    }
}

/// A validated partial update of a tenant; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TenantUpdate {
    /// New display name (the slug does not follow it).
    pub name: Option<TenantName>,
    /// New slug.
    pub slug: Option<Slug>,
    /// New plan.
    pub plan: Option<Plan>,
    /// New status.
    pub status: Option<TenantStatus>,
}

impl TenantUpdate {
    /// Validates raw input, collecting every problem.
    pub fn parse(
        name: Option<&str>,
        slug: Option<&str>,
        plan: Option<&str>,
        status: Option<&str>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let update = Self {
            name: name.and_then(|v| errors.check(TenantName::parse(v))),
            slug: slug.and_then(|v| errors.check(Slug::parse(v))),
            plan: plan.and_then(|v| errors.check(v.parse())),
            status: status.and_then(|v| errors.check(v.parse())),
        };
        errors.into_result().map(|()| update)
    }

    /// Whether the update changes nothing.
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.slug.is_none() && self.plan.is_none() && self.status.is_none()
    }

    /// Applies the update to a tenant at time `now`.
    pub fn apply(self, tenant: &mut Tenant, now: DateTime<Utc>) {
        if let Some(name) = self.name {
            tenant.name = name;
        }
        if let Some(slug) = self.slug {
            tenant.slug = slug;
        }
        if let Some(plan) = self.plan {
            tenant.plan = plan;
            // A new plan has new limits: the quota is judged again from the next message.
            tenant.quota_exceeded_period = None;
        }
        if let Some(status) = self.status {
            tenant.status = status;
        }
        tenant.updated_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_is_trimmed_and_bounded() {
        assert_eq!(TenantName::parse("  Acme  ").unwrap().as_str(), "Acme");
        assert_eq!(TenantName::parse("   ").unwrap_err().code, "required");
        assert!(TenantName::parse(&"é".repeat(200)).is_ok());
        assert_eq!(
            TenantName::parse(&"é".repeat(201)).unwrap_err().code,
            "too_long"
        );
        assert_eq!(
            TenantName::parse("a\u{0}b").unwrap_err().code,
            "control_characters"
        );
        assert!(TenantName::parse("a\nb").is_err());
    }

    #[test]
    fn new_tenant_collects_every_error() {
        let errs = NewTenant::parse("", Some("Bad Slug"), Some("gold")).unwrap_err();
        let fields: Vec<_> = errs.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "slug", "plan"]);
    }

    #[test]
    fn new_tenant_derives_ids_and_slug() {
        let id: TenantId = "0badcafe-0000-4000-8000-000000000000".parse().unwrap();
        let t = NewTenant::parse("Acme Corp", None, None)
            .unwrap()
            .into_tenant(id, crate::now());
        assert_eq!(t.account_id.as_str(), "tenant-0badcafe");
        assert_eq!(t.agent_id.as_str(), "agent-0badcafe");
        assert_eq!(t.slug.as_str(), "acme-corp");
        assert_eq!(t.plan, Plan::Free);
        assert_eq!(t.status, TenantStatus::Active);
    }

    #[test]
    fn enums_round_trip_through_text() {
        for p in Plan::ALL {
            assert_eq!(p.as_str().parse::<Plan>().unwrap(), *p);
        }
        for s in TenantStatus::ALL {
            assert_eq!(s.as_str().parse::<TenantStatus>().unwrap(), *s);
        }
        assert!("Active".parse::<TenantStatus>().is_err());
    }
}
