//! The HTTP series: requests by route template, method and status class, their latency, and
//! panics caught.
//!
//! They are keyed by the route's registered template, never by the path: one slot per route of
//! [`ROUTES`] and of the public routes, plus one per method for paths that match no route. Each
//! slot's handles are made on its first request (the only allocation) and kept, so a request
//! costs an atomic addition and a histogram sample, with no label built.

use std::sync::{LazyLock, OnceLock};
use std::time::Duration;

use metrics::{Counter, Histogram, Unit, counter, describe_counter, describe_histogram, histogram};

use crate::http::route_table::{ROUTES, route_index};

/// Requests by route template, method and status class.
pub const HTTP_REQUESTS: &str = "moltbot_saas_http_requests_total";
/// Request latency by route template and method.
pub const HTTP_DURATION: &str = "moltbot_saas_http_request_duration_seconds";
/// Panics caught while serving a request.
pub const HTTP_PANICS: &str = "moltbot_saas_http_panics_total";

/// Routes outside the authorization table: the public ones, by method and template.
const PUBLIC_ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/ready"),
    ("POST", "/auth/login"),
    ("POST", "/auth/refresh"),
    ("POST", "/auth/accept-invite"),
];
/// The methods of requests that match no route (anything else counts as `OTHER`).
const UNMATCHED_METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
/// The template label of requests that match no route.
pub const UNMATCHED: &str = "unmatched";
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

struct RouteSeries {
    method: &'static str,
    route: &'static str,
    requests: [OnceLock<Counter>; 5],
    latency: OnceLock<Histogram>,
}

impl RouteSeries {
    fn new(method: &'static str, route: &'static str) -> Self {
        Self {
            method,
            route,
            requests: [const { OnceLock::new() }; 5],
            latency: OnceLock::new(),
        }
    }
}

/// Every slot: [`ROUTES`], then [`PUBLIC_ROUTES`], then one per unmatched method, then `OTHER`.
static SERIES: LazyLock<Vec<RouteSeries>> = LazyLock::new(|| {
    ROUTES
        .iter()
        .map(|(m, p, _)| RouteSeries::new(m, p))
        .chain(PUBLIC_ROUTES.iter().map(|(m, p)| RouteSeries::new(m, p)))
        .chain(
            UNMATCHED_METHODS
                .iter()
                .map(|m| RouteSeries::new(m, UNMATCHED)),
        )
        .chain(std::iter::once(RouteSeries::new("OTHER", UNMATCHED)))
        .collect()
});

/// The slot of a request (see [`record_request`]): below `ROUTES.len()`, its index in
/// [`ROUTES`] (which authorization reuses).
pub fn route_slot(method: &str, path: &str) -> usize {
    // The public routes first: a few string comparisons, and the probes are frequent.
    if let Some(i) = PUBLIC_ROUTES
        .iter()
        .position(|(m, p)| *p == path && m.eq_ignore_ascii_case(method))
    {
        return ROUTES.len() + i;
    }
    if let Some(i) = route_index(method, path) {
        return i;
    }
    let unmatched = ROUTES.len() + PUBLIC_ROUTES.len();
    unmatched
        + UNMATCHED_METHODS
            .iter()
            .position(|m| m.eq_ignore_ascii_case(method))
            .unwrap_or(UNMATCHED_METHODS.len())
}

/// The route template of a slot (`unmatched` for requests that matched none).
pub fn slot_route(slot: usize) -> &'static str {
    SERIES.get(slot).map_or(UNMATCHED, |s| s.route)
}

/// Counts a request of `slot` answered with `status` after `elapsed`.
pub fn record_request(slot: usize, status: u16, elapsed: Duration) {
    let Some(s) = SERIES.get(slot) else { return };
    let class = usize::from(status / 100).clamp(1, 5) - 1;
    s.requests[class]
        .get_or_init(|| {
            counter!(HTTP_REQUESTS, "method" => s.method, "route" => s.route,
                "status" => STATUS_CLASSES[class])
        })
        .increment(1);
    s.latency
        .get_or_init(|| histogram!(HTTP_DURATION, "method" => s.method, "route" => s.route))
        .record(elapsed);
}

/// Describes the HTTP series to the installed recorder.
pub fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        Unit::Count,
        "HTTP requests by method, route template and status class."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "HTTP request latency by method and route template, from the request's arrival to its response's head."
    );
    describe_counter!(
        HTTP_PANICS,
        Unit::Count,
        "Panics caught while serving a request (answered 500)."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A path of each template finds its own slot, which is its index in the route table (the
    /// index authorization reuses); public routes and strays get theirs.
    #[test]
    fn every_route_has_its_own_slot() {
        for (i, (method, pattern, _)) in ROUTES.iter().enumerate() {
            let path: String = pattern
                .split('/')
                .map(|s| if s.starts_with('{') { "x1" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            assert_eq!(route_slot(method, &path), i, "{method} {path}");
            assert_eq!(slot_route(i), *pattern);
        }
        for (i, (method, path)) in PUBLIC_ROUTES.iter().enumerate() {
            assert_eq!(route_slot(method, path), ROUTES.len() + i);
            assert_eq!(slot_route(ROUTES.len() + i), *path);
        }
        let stray = route_slot("GET", "/no/such/route");
        assert_eq!(slot_route(stray), UNMATCHED);
        assert_eq!(SERIES[stray].method, "GET");
        assert_eq!(SERIES[route_slot("BREW", "/")].method, "OTHER");
        assert_eq!(route_slot("GET", "/health/"), stray, "no trailing slash");
    }
}
