//! Authorization policy in one place: what each [`Action`] is, which role may do it, and
//! [`authorize`], the decision for a principal, an action and the tenant it names:
//! - operators may do everything;
//! - gateways only read the config (combined or one tenant's), report events and send their
//!   heartbeat; on any other route their token is no credential (`Unauthenticated`, a 401);
//! - tenant principals (API keys, tenant users) reach only their own tenant: another tenant's
//!   id answers `NotFound("tenant")` exactly like a missing tenant, then the role must allow the
//!   action (`Forbidden` otherwise). Operator-only actions are `Forbidden`.
//!
//! Which HTTP route is which action is the server's route table
//! (`tenant_server::http::route_table`); the matrix is written down in `docs/security.md`.

use tenant_core::{Role, TenantId};

use crate::error::ServiceError;
use crate::principal::{ActorRef, Principal};

/// What a request does, as far as authorization is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `GET /me`.
    WhoAmI,
    /// `GET /openapi.json`.
    ReadApiDoc,
    /// `POST /tenants`.
    CreateTenant,
    /// `GET /tenants` (every tenant).
    ListTenants,
    /// `GET /tenants/{id}`.
    ReadTenant,
    /// `PATCH /tenants/{id}` (the `status` field stays operator-only).
    UpdateTenant,
    /// `DELETE /tenants/{id}`.
    DeleteTenant,
    /// Reading channels (credentials are never shown, only which fields are set).
    ReadChannels,
    /// Creating, changing, removing channels and their credentials.
    ManageChannels,
    /// `GET /tenants/{id}/config`: the tenant's gateway config fragment (may hold credentials).
    ReadTenantConfig,
    /// `GET /config`: every tenant's config.
    ReadCombinedConfig,
    /// Listing API keys (never the keys themselves).
    ReadApiKeys,
    /// Creating, revoking, rotating API keys.
    ManageApiKeys,
    /// `GET /tenants/{id}/audit`.
    ReadTenantAudit,
    /// `GET /audit`: every tenant's audit log.
    ReadAllAudit,
    /// The caller's own login session: `POST /auth/logout`, `POST /auth/password`.
    OwnSession,
    /// Listing and reading a tenant's users.
    ReadUsers,
    /// Inviting, changing and removing a tenant's users.
    ManageUsers,
    /// Creating and listing operator users.
    ManageOperators,
    /// `POST /events`, `POST /webhooks/message`: the gateway reporting what happened.
    IngestEvents,
    /// `GET /tenants/{id}/sessions`.
    ReadSessions,
    /// Reading webhook endpoints (never their secrets) and their deliveries.
    ReadWebhooks,
    /// Creating, changing, removing, testing webhook endpoints; rotating their secrets; replaying
    /// deliveries.
    ManageWebhooks,
    /// `GET /plans`: the plans and their limits.
    ReadPlans,
    /// `GET /tenants/{id}/usage`: the tenant's limits and usage.
    ReadUsage,
    /// `PATCH /tenants/{id}/limits`: the tenant's plan and overrides (operators only).
    ManageLimits,
    /// `GET /metrics`: the Prometheus exposition (every tenant's activity, in aggregate).
    ReadMetrics,
    /// `GET /tenants/{id}/export`: everything the tenant owns, as NDJSON.
    ExportTenant,
    /// `/gateways…`: the gateway fleet (operators only).
    ManageGateways,
    /// `/operator/webhooks…`: the operator's webhook endpoints (the fleet's events; operators
    /// only).
    ManageOperatorWebhooks,
    /// `GET`/`POST`/`PATCH /tenants/{id}/placement`: which gateway serves a tenant, and whether
    /// it wants a dedicated one (operators only).
    ManagePlacement,
    /// `POST /gateway/heartbeat`: a gateway reporting the document it serves.
    GatewayHeartbeat,
    /// `GET /tenants/{id}/billing`: the tenant's plan, billing state and period end.
    ReadBilling,
    /// `POST /tenants/{id}/billing/checkout`, `…/portal`: paying for the tenant.
    ManageBilling,
}

impl Action {
    /// The least role that may do this within its own tenant; `None`: operators only.
    pub fn min_role(self) -> Option<Role> {
        use Action::*;
        match self {
            WhoAmI | ReadApiDoc | ReadTenant | ReadChannels | OwnSession | ReadUsers
            | ReadSessions | ReadWebhooks | ReadPlans | ReadUsage | ReadBilling => {
                Some(Role::Member)
            }
            ManageChannels | ReadTenantConfig | ReadApiKeys | ReadTenantAudit | ManageWebhooks
            | ManageBilling => Some(Role::Admin),
            UpdateTenant | ManageApiKeys | ManageUsers | ExportTenant => Some(Role::Owner),
            CreateTenant
            | ListTenants
            | DeleteTenant
            | ReadCombinedConfig
            | ReadAllAudit
            | ManageOperators
            | IngestEvents
            | ManageLimits
            | ReadMetrics
            | ManageGateways
            | ManagePlacement
            | GatewayHeartbeat
            | ManageOperatorWebhooks => None,
        }
    }

    /// Whether a gateway may do this: read the combined or one tenant's config, report events,
    /// send its heartbeat.
    pub fn gateway_may(self) -> bool {
        matches!(
            self,
            Action::ReadCombinedConfig
                | Action::ReadTenantConfig
                | Action::IngestEvents
                | Action::GatewayHeartbeat
        )
    }
}

/// Whether a tenant principal with `role` may do `action` within its own tenant.
pub fn allows(role: Role, action: Action) -> bool {
    action.min_role().is_some_and(|min| role.at_least(min))
}

/// Decides whether `principal` may do `action` (`None`: a request that maps to no action, an
/// unknown route) on the tenant a request names: `named_tenant` is `Some` for a tenant-scoped
/// request, holding the tenant id (`None` inside when the id is malformed).
///
/// - A login session is a user's: an API key or service token has none to end or re-password.
/// - Operators may do everything.
/// - Gateways may read the combined or one tenant's config, report events and send their
///   heartbeat; anything else is `Unauthenticated` (their token is no credential there).
/// - Tenant principals reach only their own tenant: another tenant (or a malformed id) is
///   `NotFound("tenant")`, exactly like a missing tenant; an unknown route is
///   `NotFound("route")` (deny by default); then the role must allow the action (`Forbidden`
///   otherwise, also for operator-only actions).
pub fn authorize(
    principal: &Principal,
    action: Option<Action>,
    named_tenant: Option<Option<TenantId>>,
) -> Result<(), ServiceError> {
    if action == Some(Action::OwnSession)
        && !matches!(principal, Principal::Gateway { .. })
        && !matches!(
            principal.actor(),
            ActorRef::User(_) | ActorRef::OperatorUser(_)
        )
    {
        return Err(ServiceError::Forbidden);
    }
    match principal {
        Principal::Operator { .. } => Ok(()),
        // A gateway's token is a credential for its own routes only: anywhere else it is no
        // credential at all (401, like a missing token), so it reveals nothing of the route.
        Principal::Gateway { .. } => {
            if action.is_some_and(Action::gateway_may) {
                Ok(())
            } else {
                Err(ServiceError::Unauthenticated)
            }
        }
        Principal::Tenant {
            tenant_id, role, ..
        } => {
            // No action: an unknown path, or one missing from the route table.
            let Some(action) = action else {
                return Err(ServiceError::NotFound("route"));
            };
            if let Some(named) = named_tenant
                && named != Some(*tenant_id)
            {
                return Err(ServiceError::NotFound("tenant"));
            }
            if allows(*role, action) {
                Ok(())
            } else {
                Err(ServiceError::Forbidden)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The matrix of `docs/security.md`, written out independently of [`Action::min_role`].
    #[test]
    fn the_matrix_is_the_documented_one() {
        use Action::*;
        let expect = [
            (WhoAmI, [true, true, true]),
            (ReadApiDoc, [true, true, true]),
            (ReadTenant, [true, true, true]),
            (ReadChannels, [true, true, true]),
            (ManageChannels, [true, true, false]),
            (ReadTenantConfig, [true, true, false]),
            (ReadApiKeys, [true, true, false]),
            (ReadTenantAudit, [true, true, false]),
            (OwnSession, [true, true, true]),
            (ReadUsers, [true, true, true]),
            (ReadSessions, [true, true, true]),
            (ReadWebhooks, [true, true, true]),
            (ManageWebhooks, [true, true, false]),
            (ReadBilling, [true, true, true]),
            (ManageBilling, [true, true, false]),
            (UpdateTenant, [true, false, false]),
            (ManageApiKeys, [true, false, false]),
            (ManageUsers, [true, false, false]),
            (ExportTenant, [true, false, false]),
            (ManageOperators, [false, false, false]),
            (IngestEvents, [false, false, false]),
            (CreateTenant, [false, false, false]),
            (ListTenants, [false, false, false]),
            (DeleteTenant, [false, false, false]),
            (ReadCombinedConfig, [false, false, false]),
            (ReadAllAudit, [false, false, false]),
            (ReadMetrics, [false, false, false]),
            (ManageGateways, [false, false, false]),
            (ManageOperatorWebhooks, [false, false, false]),
            (ManagePlacement, [false, false, false]),
            (GatewayHeartbeat, [false, false, false]),
        ];
        for (action, [owner, admin, member]) in expect {
            assert_eq!(allows(Role::Owner, action), owner, "{action:?}");
            assert_eq!(allows(Role::Admin, action), admin, "{action:?}");
            assert_eq!(allows(Role::Member, action), member, "{action:?}");
        }
    }

    #[test]
    fn gateways_read_config_and_report_events_only() {
        let gateway = Principal::Gateway {
            actor: ActorRef::ServiceToken(None),
        };
        for action in [
            Action::ReadCombinedConfig,
            Action::ReadTenantConfig,
            Action::IngestEvents,
        ] {
            assert!(
                authorize(&gateway, Some(action), None).is_ok(),
                "{action:?}"
            );
        }
        for action in [
            Action::ReadTenant,
            Action::ListTenants,
            Action::ManageWebhooks,
        ] {
            assert!(matches!(
                authorize(&gateway, Some(action), None),
                Err(ServiceError::Unauthenticated)
            ));
        }
        assert!(matches!(
            authorize(&gateway, None, None),
            Err(ServiceError::Unauthenticated)
        ));
    }

    #[test]
    fn tenant_principals_reach_only_their_tenant() {
        let mine = TenantId::random();
        let admin = Principal::Tenant {
            tenant_id: mine,
            role: Role::Admin,
            actor: ActorRef::ApiKey(uuid::Uuid::new_v4()),
        };
        let other = Some(Some(TenantId::random()));
        assert!(matches!(
            authorize(&admin, Some(Action::ReadChannels), other),
            Err(ServiceError::NotFound("tenant"))
        ));
        assert!(matches!(
            authorize(&admin, Some(Action::ReadChannels), Some(None)),
            Err(ServiceError::NotFound("tenant"))
        ));
        assert!(authorize(&admin, Some(Action::ManageChannels), Some(Some(mine))).is_ok());
        assert!(matches!(
            authorize(&admin, Some(Action::ManageApiKeys), Some(Some(mine))),
            Err(ServiceError::Forbidden)
        ));
        assert!(matches!(
            authorize(&admin, None, Some(Some(mine))),
            Err(ServiceError::NotFound("route"))
        ));
        assert!(
            authorize(
                &Principal::Operator {
                    actor: ActorRef::ServiceToken(None)
                },
                Some(Action::DeleteTenant),
                Some(Some(mine))
            )
            .is_ok()
        );
    }
}
