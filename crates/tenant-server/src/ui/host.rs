//! Which site a request is for, from its host: the operators' dashboard (the apex, `admin.`,
//! or any host when no base domain is configured) or a tenant's portal (`{slug}.{base}`).
//!
//! The host is the `Host` header; `X-Forwarded-Host` replaces it only when the request comes
//! from a peer listed in `SAAS_TRUSTED_PROXIES` (anyone else could name any tenant with it).
//!
//! A tenant's former slug (see `tenant_service::tenants`) answers `308 Permanent Redirect` to the
//! same path and query on the current slug's host, for pages and the API alike ([`moved`]).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HOST, HeaderMap};
use actix_web::{HttpRequest, HttpResponse};
use tenant_core::Tenant;

use crate::settings::ui::UiSettings;

/// What a host serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKind {
    /// The operators' dashboard.
    Admin,
    /// The portal of the tenant with this slug (which may not exist).
    Tenant(String),
}

/// The site a request was resolved to.
#[derive(Debug, Clone)]
pub enum Site {
    /// The operators' dashboard (the portal there finds the tenant from the session).
    Admin,
    /// A tenant's own host.
    Tenant(Box<Tenant>),
}

/// The request's authority (`host[:port]`, lowercase) as the client addressed it: the `Host`
/// header, or the first `X-Forwarded-Host` when the peer is a trusted proxy.
pub fn authority(req: &HttpRequest, settings: &UiSettings) -> Option<String> {
    let trusted = req
        .peer_addr()
        .is_some_and(|peer| settings.trusted_proxies.contains(&peer.ip()));
    let headers = req.headers();
    let forwarded = trusted
        .then(|| first_value(headers, "x-forwarded-host"))
        .flatten();
    forwarded
        .or_else(|| first_value(headers, HOST.as_str()))
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()))
        .map(|h| h.to_ascii_lowercase())
}

fn first_value(headers: &HeaderMap, name: &str) -> Option<String> {
    let v = headers.get(name)?.to_str().ok()?;
    let v = v.split(',').next()?.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

/// The host name of an authority, without the port (`[::1]:80` → `[::1]`).
pub fn host_name(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .split_once(']')
            .map_or(authority, |(h, _)| &authority[..=h.len()]);
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

/// What `authority` serves under `settings`.
pub fn classify(authority: Option<&str>, settings: &UiSettings) -> HostKind {
    let (Some(base), Some(authority)) = (&settings.base_domain, authority) else {
        return HostKind::Admin;
    };
    let host = host_name(authority).trim_end_matches('.');
    if host == base {
        return HostKind::Admin;
    }
    match host
        .strip_suffix(base.as_str())
        .and_then(|rest| rest.strip_suffix('.'))
    {
        Some("admin") => HostKind::Admin,
        // One label: `a.b.example.com` is nobody's.
        Some(label) if !label.contains('.') => HostKind::Tenant(label.to_owned()),
        Some(_) => HostKind::Tenant(String::new()),
        // Another name (an IP address, `localhost` under another base): the dashboard, so a
        // deployment stays reachable by address.
        None => HostKind::Admin,
    }
}

/// Where a request to `authority` goes when its slug moved to `new_slug`: the same port, path and
/// query on `{new_slug}.{base}`, scheme-relative (the client keeps its scheme).
pub fn moved_location(
    authority: &str,
    new_slug: &str,
    settings: &UiSettings,
    path_and_query: &str,
) -> Option<String> {
    let base = settings.base_domain.as_deref()?;
    let port = &authority[host_name(authority).len()..];
    Some(format!("//{new_slug}.{base}{port}{path_and_query}"))
}

/// The `308 Permanent Redirect` of a request on a former slug's host to `new_slug`'s host (a
/// `404` if the request's host cannot be rebuilt, which a tenant host always can).
pub fn moved(req: &HttpRequest, settings: &UiSettings, new_slug: &str) -> HttpResponse {
    let pq = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let location = authority(req, settings)
        .and_then(|a| moved_location(&a, new_slug, settings, pq))
        .and_then(|l| header::HeaderValue::from_str(&l).ok());
    match location {
        Some(location) => HttpResponse::build(StatusCode::PERMANENT_REDIRECT)
            .insert_header((header::LOCATION, location))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        None => HttpResponse::NotFound().finish(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_base(base: &str) -> UiSettings {
        UiSettings {
            base_domain: Some(base.into()),
            ..UiSettings::default()
        }
    }

    #[test]
    fn hosts_are_classified() {
        let s = with_base("example.com");
        assert_eq!(classify(Some("example.com"), &s), HostKind::Admin);
        assert_eq!(classify(Some("admin.example.com:443"), &s), HostKind::Admin);
        assert_eq!(
            classify(Some("acme.example.com:8080"), &s),
            HostKind::Tenant("acme".into())
        );
        assert_eq!(
            classify(Some("a.b.example.com"), &s),
            HostKind::Tenant(String::new())
        );
        assert_eq!(classify(Some("evilexample.com"), &s), HostKind::Admin);
        assert_eq!(classify(Some("127.0.0.1:3000"), &s), HostKind::Admin);
        assert_eq!(
            classify(Some("acme.example.com"), &UiSettings::default()),
            HostKind::Admin
        );
        assert_eq!(host_name("[::1]:3000"), "[::1]");
        assert_eq!(host_name("acme.localhost:3000"), "acme.localhost");
    }

    #[test]
    fn moved_hosts_keep_port_path_and_query() {
        let s = with_base("example.com");
        assert_eq!(
            moved_location("old.example.com:8080", "new", &s, "/tenant/x?a=1").as_deref(),
            Some("//new.example.com:8080/tenant/x?a=1")
        );
        assert_eq!(
            moved_location("old.example.com", "new", &s, "/").as_deref(),
            Some("//new.example.com/")
        );
        assert_eq!(
            moved_location("old", "new", &UiSettings::default(), "/"),
            None
        );
    }
}
