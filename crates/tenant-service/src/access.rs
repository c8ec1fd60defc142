//! Authorization in one place: every route's [`Action`], and which role may do each.
//!
//! The middleware ([`crate::middleware::require_auth`]) looks up the request's route in
//! [`ROUTES`] and applies [`authorize`] before any handler runs:
//! - operators may do everything;
//! - gateways only what [`crate::middleware::gateway_may`] allows;
//! - tenant principals (API keys, tenant users) reach only `/tenants/{their id}/…`: another
//!   tenant's id answers `404 not_found` exactly like a missing tenant, then the role must allow
//!   the route's action (`403 forbidden` otherwise). Operator-only actions answer 403. A route
//!   missing from [`ROUTES`] is refused to tenant principals (deny by default), and the
//!   cross-tenant test fails, so a new route cannot be forgotten.
//!
//! The matrix is written down in `docs/security.md`.

use actix_web::http::Method;
use tenant_core::{Role, TenantId};

use crate::error::ApiError;
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
}

impl Action {
    /// The least role that may do this within its own tenant; `None`: operators only.
    pub fn min_role(self) -> Option<Role> {
        use Action::*;
        match self {
            WhoAmI | ReadApiDoc | ReadTenant | ReadChannels | OwnSession | ReadUsers
            | ReadSessions | ReadWebhooks => Some(Role::Member),
            ManageChannels | ReadTenantConfig | ReadApiKeys | ReadTenantAudit | ManageWebhooks => {
                Some(Role::Admin)
            }
            UpdateTenant | ManageApiKeys | ManageUsers => Some(Role::Owner),
            CreateTenant | ListTenants | DeleteTenant | ReadCombinedConfig | ReadAllAudit
            | ManageOperators | IngestEvents => None,
        }
    }
}

/// Whether a tenant principal with `role` may do `action` within its own tenant.
pub fn allows(role: Role, action: Action) -> bool {
    action.min_role().is_some_and(|min| role.at_least(min))
}

/// Every route (method, path pattern as registered) and its action. Probes (`/health`,
/// `/ready`) are public and not listed.
pub const ROUTES: &[(&str, &str, Action)] = &[
    ("GET", "/me", Action::WhoAmI),
    ("GET", "/openapi.json", Action::ReadApiDoc),
    ("POST", "/tenants", Action::CreateTenant),
    ("GET", "/tenants", Action::ListTenants),
    ("GET", "/tenants/{id}", Action::ReadTenant),
    ("PATCH", "/tenants/{id}", Action::UpdateTenant),
    ("DELETE", "/tenants/{id}", Action::DeleteTenant),
    ("GET", "/tenants/{id}/channels", Action::ReadChannels),
    ("POST", "/tenants/{id}/channels", Action::ManageChannels),
    ("GET", "/tenants/{id}/channels/{kind}", Action::ReadChannels),
    (
        "PATCH",
        "/tenants/{id}/channels/{kind}",
        Action::ManageChannels,
    ),
    (
        "DELETE",
        "/tenants/{id}/channels/{kind}",
        Action::ManageChannels,
    ),
    ("GET", "/tenants/{id}/config", Action::ReadTenantConfig),
    ("GET", "/config", Action::ReadCombinedConfig),
    ("GET", "/tenants/{id}/api-keys", Action::ReadApiKeys),
    ("POST", "/tenants/{id}/api-keys", Action::ManageApiKeys),
    (
        "DELETE",
        "/tenants/{id}/api-keys/{kid}",
        Action::ManageApiKeys,
    ),
    (
        "POST",
        "/tenants/{id}/api-keys/{kid}/rotate",
        Action::ManageApiKeys,
    ),
    ("GET", "/tenants/{id}/audit", Action::ReadTenantAudit),
    ("GET", "/audit", Action::ReadAllAudit),
    ("POST", "/auth/logout", Action::OwnSession),
    ("POST", "/auth/password", Action::OwnSession),
    ("GET", "/tenants/{id}/users", Action::ReadUsers),
    ("GET", "/tenants/{id}/users/{uid}", Action::ReadUsers),
    ("POST", "/tenants/{id}/users", Action::ManageUsers),
    ("PATCH", "/tenants/{id}/users/{uid}", Action::ManageUsers),
    ("DELETE", "/tenants/{id}/users/{uid}", Action::ManageUsers),
    ("POST", "/operators", Action::ManageOperators),
    ("GET", "/operators", Action::ManageOperators),
    ("POST", "/events", Action::IngestEvents),
    ("POST", "/webhooks/message", Action::IngestEvents),
    ("GET", "/tenants/{id}/sessions", Action::ReadSessions),
    ("GET", "/tenants/{id}/webhooks", Action::ReadWebhooks),
    ("GET", "/tenants/{id}/webhooks/{wid}", Action::ReadWebhooks),
    (
        "GET",
        "/tenants/{id}/webhooks/{wid}/deliveries",
        Action::ReadWebhooks,
    ),
    (
        "GET",
        "/tenants/{id}/webhooks/{wid}/deliveries/{did}",
        Action::ReadWebhooks,
    ),
    ("POST", "/tenants/{id}/webhooks", Action::ManageWebhooks),
    (
        "PATCH",
        "/tenants/{id}/webhooks/{wid}",
        Action::ManageWebhooks,
    ),
    (
        "DELETE",
        "/tenants/{id}/webhooks/{wid}",
        Action::ManageWebhooks,
    ),
    (
        "POST",
        "/tenants/{id}/webhooks/{wid}/rotate-secret",
        Action::ManageWebhooks,
    ),
    (
        "POST",
        "/tenants/{id}/webhooks/{wid}/test",
        Action::ManageWebhooks,
    ),
    (
        "POST",
        "/tenants/{id}/webhooks/{wid}/deliveries/{did}/replay",
        Action::ManageWebhooks,
    ),
];

/// The action of a route, by method and registered path pattern.
pub fn action_for(method: &str, pattern: &str) -> Option<Action> {
    ROUTES
        .iter()
        .find(|(m, p, _)| m.eq_ignore_ascii_case(method) && *p == pattern)
        .map(|(_, _, a)| *a)
}

/// Whether `path` matches `pattern` the way the router matches it: segment by segment, a
/// `{name}` segment standing for exactly one non-empty segment.
fn pattern_matches(pattern: &str, path: &str) -> bool {
    let (mut want, mut got) = (pattern.split('/'), path.split('/'));
    loop {
        match (want.next(), got.next()) {
            (None, None) => return true,
            (Some(w), Some(g)) if w.starts_with('{') => {
                if g.is_empty() {
                    return false;
                }
            }
            (Some(w), Some(g)) if w == g => {}
            _ => return false,
        }
    }
}

/// The route a request is for: its registered pattern and action. Matching the table here
/// instead of asking the router again (`match_pattern`) saves a second regex walk over every
/// route per request; a test checks that no two patterns of a method overlap, so the match is
/// the router's.
pub fn route_for(method: &str, path: &str) -> Option<(&'static str, Action)> {
    let depth = slashes(path);
    ROUTES
        .iter()
        .find(|(m, p, _)| {
            m.eq_ignore_ascii_case(method) && slashes(p) == depth && pattern_matches(p, path)
        })
        .map(|(_, p, a)| (*p, *a))
}

/// How many segments a path has, counted cheaply before any segment is compared.
fn slashes(s: &str) -> usize {
    s.bytes().filter(|&b| b == b'/').count()
}

/// The tenant a `/tenants/{id}/…` path names, when its pattern is tenant-scoped. `Some(None)`:
/// tenant-scoped, but the id is malformed.
fn scoped_tenant(pattern: &str, path: &str) -> Option<Option<TenantId>> {
    if pattern != "/tenants/{id}" && !pattern.starts_with("/tenants/{id}/") {
        return None;
    }
    let raw = path.strip_prefix("/tenants/")?.split('/').next()?;
    Some(raw.parse().ok())
}

/// Decides whether `principal` may make this request.
pub fn authorize(principal: &Principal, method: &Method, path: &str) -> Result<(), ApiError> {
    let route = route_for(method.as_str(), path);
    // A login session is a user's: an API key or service token has none to end or re-password.
    if route.is_some_and(|(_, action)| action == Action::OwnSession)
        && !matches!(
            principal.actor(),
            ActorRef::User(_) | ActorRef::OperatorUser(_)
        )
    {
        return Err(ApiError::Forbidden);
    }
    match principal {
        Principal::Operator { .. } => Ok(()),
        Principal::Gateway { .. } => {
            if crate::middleware::gateway_may(method, path) {
                Ok(())
            } else {
                Err(ApiError::Forbidden)
            }
        }
        Principal::Tenant {
            tenant_id, role, ..
        } => {
            // No route: an unknown path, or one missing from the table (denied by default).
            let Some((pattern, action)) = route else {
                return Err(ApiError::NotFound("route"));
            };
            if let Some(named) = scoped_tenant(pattern, path)
                && named != Some(*tenant_id)
            {
                return Err(ApiError::NotFound("tenant"));
            }
            if allows(*role, action) {
                Ok(())
            } else {
                Err(ApiError::Forbidden)
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
            (UpdateTenant, [true, false, false]),
            (ManageApiKeys, [true, false, false]),
            (ManageUsers, [true, false, false]),
            (ManageOperators, [false, false, false]),
            (IngestEvents, [false, false, false]),
            (CreateTenant, [false, false, false]),
            (ListTenants, [false, false, false]),
            (DeleteTenant, [false, false, false]),
            (ReadCombinedConfig, [false, false, false]),
            (ReadAllAudit, [false, false, false]),
        ];
        for (action, [owner, admin, member]) in expect {
            assert_eq!(allows(Role::Owner, action), owner, "{action:?}");
            assert_eq!(allows(Role::Admin, action), admin, "{action:?}");
            assert_eq!(allows(Role::Member, action), member, "{action:?}");
        }
    }

    #[test]
    fn another_tenant_is_not_found_before_the_role_is_checked() {
        let mine = TenantId::random();
        let member = Principal::Tenant {
            tenant_id: mine,
            role: Role::Member,
            actor: ActorRef::ApiKey(uuid::Uuid::new_v4()),
        };
        let other = format!("/tenants/{}/api-keys", TenantId::random());
        let err = authorize(&member, &Method::POST, &other);
        assert!(matches!(err, Err(ApiError::NotFound("tenant"))));
        let own = format!("/tenants/{mine}/api-keys");
        let err = authorize(&member, &Method::POST, &own);
        assert!(matches!(err, Err(ApiError::Forbidden)));
        let own = format!("/tenants/{mine}/channels");
        assert!(authorize(&member, &Method::GET, &own).is_ok());
        let bad = "/tenants/not-a-uuid/channels";
        let err = authorize(&member, &Method::GET, bad);
        assert!(matches!(err, Err(ApiError::NotFound("tenant"))));
        // Unlisted routes are refused; operator-only ones too.
        let err = authorize(&member, &Method::GET, &format!("/tenants/{mine}/new"));
        assert!(matches!(err, Err(ApiError::NotFound("route"))));
        let err = authorize(&member, &Method::GET, "/audit");
        assert!(matches!(err, Err(ApiError::Forbidden)));
    }

    #[test]
    fn only_users_have_a_login_session() {
        let tenant_id = TenantId::random();
        let logout = |p: &Principal| authorize(p, &Method::POST, "/auth/logout").is_ok();
        let as_actor = |actor| Principal::Tenant {
            tenant_id,
            role: Role::Member,
            actor,
        };
        assert!(logout(&as_actor(ActorRef::User(uuid::Uuid::new_v4()))));
        assert!(!logout(&as_actor(ActorRef::ApiKey(uuid::Uuid::new_v4()))));
        assert!(logout(&Principal::Operator {
            actor: ActorRef::OperatorUser(uuid::Uuid::new_v4())
        }));
        assert!(!logout(&Principal::Operator {
            actor: ActorRef::ServiceToken(None)
        }));
    }

    #[test]
    fn paths_match_patterns_segment_by_segment() {
        let t = TenantId::random();
        assert_eq!(
            route_for("GET", &format!("/tenants/{t}/channels/telegram")),
            Some(("/tenants/{id}/channels/{kind}", Action::ReadChannels))
        );
        assert_eq!(
            route_for("delete", &format!("/tenants/{t}")).map(|r| r.1),
            Some(Action::DeleteTenant)
        );
        assert_eq!(route_for("GET", "/tenants//channels"), None);
        assert_eq!(route_for("GET", "/tenants/x/channels/"), None);
        assert_eq!(route_for("GET", "/tenants/x/channels/a/b"), None);
        assert_eq!(route_for("PUT", "/tenants/x"), None);
        assert_eq!(route_for("GET", "/me/"), None);
    }

    /// With no two patterns of one method able to match the same path, the first match in the
    /// table is the router's match whatever the order of registration.
    #[test]
    fn no_two_routes_of_a_method_overlap() {
        for (i, (m1, p1, _)) in ROUTES.iter().enumerate() {
            for (m2, p2, _) in &ROUTES[i + 1..] {
                if m1 != m2 {
                    continue;
                }
                let (a, b): (Vec<&str>, Vec<&str>) =
                    (p1.split('/').collect(), p2.split('/').collect());
                let overlap = a.len() == b.len()
                    && a.iter()
                        .zip(&b)
                        .all(|(x, y)| x == y || x.starts_with('{') || y.starts_with('{'));
                assert!(!overlap, "{m1} {p1} and {p2} can match the same path");
            }
        }
    }
}
