//! The tenant-scoped API on a tenant's own host (`{slug}.{SAAS_BASE_DOMAIN}`).
//!
//! There, `/tenant/…` is `/tenants/{that tenant's id}/…` (`GET /tenant/channels`,
//! `POST /tenant/api-keys`, …): the path is rewritten before authentication, so the route table
//! and the access policy decide exactly as for the long form, and a credential of another
//! tenant finds the tenant *not found*. The long form `/tenants/{id}/…` still works on that host,
//! but only for that tenant: another id is *not found* whoever asks, operators included. An
//! unknown slug's host answers every such path `404`; a tenant's former slug's host answers them
//! `308` to the same path and query on its current host, until the redirect expires. Other paths (`/health`, `/config`,
//! `/events`, `/me`, the pages) are served as on any host.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Uri;
use actix_web::http::uri::PathAndQuery;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};
use tenant_core::TenantId;
use tenant_service::tenants::SlugTarget;

use crate::http::error::ApiError;
use crate::http::metrics::route_slot;
use crate::http::request_log::RequestMeta;
use crate::settings::ui::UiSettings;
use crate::state::AppState;
use crate::ui::host::{self, HostKind};

/// What a path on a tenant's host becomes.
#[derive(Debug, PartialEq, Eq)]
enum Rewrite {
    /// Not tenant-scoped: served as is.
    Keep,
    /// `/tenant…`: to `/tenants/{id}…`.
    Short(String),
    /// `/tenants/{id}…`: allowed only for this host's tenant.
    Long(String),
}

fn classify_path(path: &str) -> Rewrite {
    if let Some(rest) = path.strip_prefix("/tenant")
        && (rest.is_empty() || rest.starts_with('/'))
    {
        return Rewrite::Short(rest.to_owned());
    }
    if let Some(rest) = path.strip_prefix("/tenants/") {
        let id = rest.split('/').next().unwrap_or("");
        return Rewrite::Long(id.to_owned());
    }
    Rewrite::Keep
}

/// Rewrites and guards the tenant-scoped API on tenant hosts (see the module doc).
pub async fn tenant_host_api(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let settings = req.app_data::<web::Data<UiSettings>>().cloned();
    let slug = match settings.as_ref() {
        Some(s) if s.base_domain.is_some() => {
            match host::classify(host::authority(req.request(), s).as_deref(), s) {
                HostKind::Tenant(slug) => Some(slug),
                HostKind::Admin => None,
            }
        }
        _ => None,
    };
    let rewrite = classify_path(req.path());
    let Some(slug) = slug.filter(|_| rewrite != Rewrite::Keep) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let not_found = |req: ServiceRequest| {
        let res = ApiError::NotFound("tenant").error_response();
        Ok(req.into_response(res).map_into_right_body())
    };
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return not_found(req);
    };
    let tenant: TenantId = match state.control.resolve_slug(&slug).await {
        Ok(SlugTarget::Tenant(t)) => t.id,
        Ok(SlugTarget::Moved(to)) => {
            let settings = settings.unwrap_or_default();
            let res = host::moved(req.request(), &settings, &to);
            return Ok(req.into_response(res).map_into_right_body());
        }
        Ok(SlugTarget::Unknown) => return not_found(req),
        Err(e) => {
            let res = ApiError::from(e).error_response();
            return Ok(req.into_response(res).map_into_right_body());
        }
    };
    match rewrite {
        Rewrite::Keep => {}
        Rewrite::Long(id) => {
            if id.parse::<TenantId>().ok() != Some(tenant) {
                return not_found(req);
            }
        }
        Rewrite::Short(rest) => {
            let query = req.query_string();
            let target = if query.is_empty() {
                format!("/tenants/{tenant}{rest}")
            } else {
                format!("/tenants/{tenant}{rest}?{query}")
            };
            let Ok(pq) = target.parse::<PathAndQuery>() else {
                return not_found(req);
            };
            let mut parts = req.head().uri.clone().into_parts();
            parts.path_and_query = Some(pq);
            let Ok(uri) = Uri::from_parts(parts) else {
                return not_found(req);
            };
            req.match_info_mut().get_mut().update(&uri);
            req.head_mut().uri = uri;
            // The route looked up by the request log was the short path's: look it up again
            // for authorization and the metrics.
            let method = req.method().clone();
            let path = req.path().to_owned();
            if let Some(meta) = req.extensions_mut().get_mut::<RequestMeta>()
                && meta.route.is_some()
            {
                meta.route = Some(route_slot(method.as_str(), &path));
            }
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_classified() {
        assert_eq!(classify_path("/tenant"), Rewrite::Short(String::new()));
        assert_eq!(
            classify_path("/tenant/channels/telegram"),
            Rewrite::Short("/channels/telegram".into())
        );
        assert_eq!(classify_path("/tenantx"), Rewrite::Keep);
        assert_eq!(classify_path("/tenants"), Rewrite::Keep);
        assert_eq!(
            classify_path("/tenants/abc/keys"),
            Rewrite::Long("abc".into())
        );
        assert_eq!(classify_path("/config"), Rewrite::Keep);
    }
}
