//! The route table of authorization: every route's method, registered pattern and
//! [`Action`], and the per-request decision of [`authorize`].
//!
//! The authentication middleware ([`crate::http::authenticate::require_auth`]) looks up the
//! request's route here and asks the policy ([`tenant_service::access::authorize`]) whether its
//! principal may do the route's action on the tenant the path names, before any handler runs. A
//! route missing from [`ROUTES`] is refused to tenant principals (deny by default), and the
//! cross-tenant test fails, so a new route cannot be forgotten.

use actix_web::http::Method;
use tenant_core::TenantId;
use tenant_service::ServiceError;
use tenant_service::access::{self, Action};
use tenant_service::principal::Principal;

/// Every route (method, path pattern as registered) and its action. Probes (`/health`,
/// `/ready`), the login flows and Stripe's webhook are public and not listed.
pub const ROUTES: &[(&str, &str, Action)] = &[
    ("GET", "/me", Action::WhoAmI),
    ("GET", "/openapi.json", Action::ReadApiDoc),
    ("POST", "/tenants", Action::CreateTenant),
    ("GET", "/tenants", Action::ListTenants),
    ("GET", "/tenants/{id}", Action::ReadTenant),
    ("PATCH", "/tenants/{id}", Action::UpdateTenant),
    ("DELETE", "/tenants/{id}", Action::DeleteTenant),
    ("GET", "/tenants/{id}/export", Action::ExportTenant),
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
    ("GET", "/metrics", Action::ReadMetrics),
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
    ("GET", "/operator/webhooks", Action::ManageOperatorWebhooks),
    ("POST", "/operator/webhooks", Action::ManageOperatorWebhooks),
    (
        "GET",
        "/operator/webhooks/{oid}",
        Action::ManageOperatorWebhooks,
    ),
    (
        "PATCH",
        "/operator/webhooks/{oid}",
        Action::ManageOperatorWebhooks,
    ),
    (
        "DELETE",
        "/operator/webhooks/{oid}",
        Action::ManageOperatorWebhooks,
    ),
    ("GET", "/plans", Action::ReadPlans),
    ("GET", "/tenants/{id}/usage", Action::ReadUsage),
    ("PATCH", "/tenants/{id}/limits", Action::ManageLimits),
    ("GET", "/gateways", Action::ManageGateways),
    ("POST", "/gateways", Action::ManageGateways),
    ("GET", "/gateways/{gid}", Action::ManageGateways),
    ("PATCH", "/gateways/{gid}", Action::ManageGateways),
    ("DELETE", "/gateways/{gid}", Action::ManageGateways),
    ("POST", "/gateways/{gid}/drain", Action::ManageGateways),
    ("POST", "/gateways/place-pending", Action::ManageGateways),
    (
        "POST",
        "/gateways/{gid}/rotate-token",
        Action::ManageGateways,
    ),
    ("GET", "/tenants/{id}/placement", Action::ManagePlacement),
    ("POST", "/tenants/{id}/placement", Action::ManagePlacement),
    ("PATCH", "/tenants/{id}/placement", Action::ManagePlacement),
    ("POST", "/gateway/heartbeat", Action::GatewayHeartbeat),
    ("GET", "/tenants/{id}/billing", Action::ReadBilling),
    (
        "POST",
        "/tenants/{id}/billing/checkout",
        Action::ManageBilling,
    ),
    (
        "POST",
        "/tenants/{id}/billing/portal",
        Action::ManageBilling,
    ),
];

/// The routes anyone may call (no action: they authenticate by their body, or not at all).
pub const PUBLIC_ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/ready"),
    ("POST", "/auth/login"),
    ("POST", "/auth/refresh"),
    ("POST", "/auth/accept-invite"),
    ("POST", "/billing/stripe/webhook"),
];

/// The methods `path` is served with, for a `405` and its `Allow` header (`GET, PATCH`);
/// `None` for a path no route matches.
pub fn allowed_methods(path: &str) -> Option<String> {
    let depth = slashes(path);
    let matching: Vec<(&str, &str)> = every_route()
        .filter(|(_, p)| slashes(p) == depth && pattern_matches(p, path))
        .collect();
    let mut methods: Vec<&str> = matching
        .iter()
        .filter(|(_, p)| !matching.iter().any(|(_, q)| more_specific(q, p)))
        .map(|(m, _)| *m)
        .collect();
    if methods.is_empty() {
        return None;
    }
    methods.sort_unstable();
    methods.dedup();
    Some(methods.join(", "))
}

/// Every route of the API, with an action or public: method and pattern.
fn every_route() -> impl Iterator<Item = (&'static str, &'static str)> {
    ROUTES
        .iter()
        .map(|(m, p, _)| (*m, *p))
        .chain(PUBLIC_ROUTES.iter().copied())
}

/// Whether pattern `q` names some of `p`'s paths more exactly than `p`: the same number of
/// segments, and wherever they differ `q` has a literal and `p` a parameter
/// (`/gateways/place-pending` against `/gateways/{gid}`). Such a path is `q`'s alone: its
/// other methods are a `405`, not a request for a gateway named `place-pending`.
fn more_specific(q: &str, p: &str) -> bool {
    if q == p || slashes(q) != slashes(p) {
        return false;
    }
    q.split('/')
        .zip(p.split('/'))
        .all(|(a, b)| a == b || (b.starts_with('{') && !a.starts_with('{')))
}

/// For each route of [`ROUTES`], whether another route's pattern is [`more_specific`] than
/// its own (a literal where it has a parameter): only those few need the second look in
/// [`route_index`].
fn shadowed() -> &'static [bool] {
    static SHADOWED: std::sync::OnceLock<Vec<bool>> = std::sync::OnceLock::new();
    SHADOWED.get_or_init(|| {
        ROUTES
            .iter()
            .map(|(_, p, _)| every_route().any(|(_, q)| more_specific(q, p)))
            .collect()
    })
}

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
    route_index(method, path).and_then(|i| ROUTES.get(i).map(|(_, p, a)| (*p, *a)))
}

/// The index in [`ROUTES`] of the route a request is for (see [`route_for`]).
pub fn route_index(method: &str, path: &str) -> Option<usize> {
    let depth = slashes(path);
    let i = ROUTES.iter().position(|(m, p, _)| {
        m.eq_ignore_ascii_case(method) && slashes(p) == depth && pattern_matches(p, path)
    })?;
    // A path a more exact pattern names is that pattern's (see `more_specific`).
    let pattern = ROUTES[i].1;
    let taken = shadowed()[i]
        && every_route().any(|(_, q)| more_specific(q, pattern) && pattern_matches(q, path));
    (!taken).then_some(i)
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

/// Decides whether `principal` may make this request: the policy applied to the route's action
/// and the tenant its path names.
pub fn authorize(principal: &Principal, method: &Method, path: &str) -> Result<(), ServiceError> {
    authorize_at(principal, method, path, None)
}

/// [`authorize`] with the request's route already looked up: `known` is its index in
/// [`ROUTES`] (an index past the table: a route outside it), or `None` to look it up here.
pub fn authorize_at(
    principal: &Principal,
    method: &Method,
    path: &str,
    known: Option<usize>,
) -> Result<(), ServiceError> {
    let index = match known {
        Some(i) => Some(i).filter(|i| *i < ROUTES.len()),
        None => route_index(method.as_str(), path),
    };
    let route = index.and_then(|i| ROUTES.get(i).map(|(_, p, a)| (*p, *a)));
    let named = route.and_then(|(pattern, _)| scoped_tenant(pattern, path));
    access::authorize(principal, route.map(|(_, action)| action), named)
}

#[cfg(test)]
mod tests {
    use tenant_core::Role;
    use tenant_service::principal::ActorRef;

    use super::*;

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
        assert!(matches!(err, Err(ServiceError::NotFound("tenant"))));
        let own = format!("/tenants/{mine}/api-keys");
        let err = authorize(&member, &Method::POST, &own);
        assert!(matches!(err, Err(ServiceError::Forbidden)));
        let own = format!("/tenants/{mine}/channels");
        assert!(authorize(&member, &Method::GET, &own).is_ok());
        let bad = "/tenants/not-a-uuid/channels";
        let err = authorize(&member, &Method::GET, bad);
        assert!(matches!(err, Err(ServiceError::NotFound("tenant"))));
        // Unlisted routes are refused; operator-only ones too.
        let err = authorize(&member, &Method::GET, &format!("/tenants/{mine}/new"));
        assert!(matches!(err, Err(ServiceError::NotFound("route"))));
        let err = authorize(&member, &Method::GET, "/audit");
        assert!(matches!(err, Err(ServiceError::Forbidden)));
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

    #[test]
    fn a_known_path_names_its_methods() {
        let t = TenantId::random();
        assert_eq!(
            allowed_methods(&format!("/tenants/{t}")).as_deref(),
            Some("DELETE, GET, PATCH")
        );
        assert_eq!(allowed_methods("/auth/login").as_deref(), Some("POST"));
        assert_eq!(allowed_methods("/tenants").as_deref(), Some("GET, POST"));
        assert_eq!(allowed_methods("/nowhere"), None);
        // A literal segment names its own resource, not a parameter's value.
        assert_eq!(
            allowed_methods("/gateways/place-pending").as_deref(),
            Some("POST")
        );
        assert_eq!(
            allowed_methods("/gateways/g-1").as_deref(),
            Some("DELETE, GET, PATCH")
        );
        assert_eq!(route_for("PATCH", "/gateways/place-pending"), None);
        assert_eq!(
            route_for("POST", "/gateways/place-pending").map(|(p, _)| p),
            Some("/gateways/place-pending")
        );
        assert_eq!(
            route_for("PATCH", "/gateways/g-1").map(|(p, _)| p),
            Some("/gateways/{gid}")
        );
        assert_eq!(allowed_methods("/tenants//channels"), None);
    }

    #[test]
    fn gateway_reads_only_config() {
        let gateway = Principal::Gateway {
            actor: ActorRef::ServiceToken(None),
        };
        let gateway_may = |m: &Method, p: &str| authorize(&gateway, m, p).is_ok();
        assert!(gateway_may(&Method::GET, "/config"));
        assert!(gateway_may(&Method::GET, "/tenants/abc/config"));
        assert!(!gateway_may(&Method::POST, "/config"));
        assert!(!gateway_may(&Method::GET, "/tenants"));
        assert!(!gateway_may(&Method::GET, "/tenants/abc/channels/config"));
        assert!(!gateway_may(&Method::GET, "/tenants//config"));
        assert!(gateway_may(&Method::POST, "/events"));
        assert!(gateway_may(&Method::POST, "/webhooks/message"));
        assert!(!gateway_may(&Method::GET, "/events"));
        assert!(!gateway_may(&Method::POST, "/tenants/abc/webhooks"));
    }
}
