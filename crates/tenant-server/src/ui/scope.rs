//! Who may see which pages: [`TenantScope`], the tenant a tenant page is about, and
//! [`OperatorPage`], the operators' own pages.
//!
//! The same tenant pages serve two areas: the admin's `/admin/tenants/{id}/…` (operators, on the
//! dashboard's host) and the portal's `/portal/…` (the tenant of the host `{slug}.{base}`, or
//! else the logged-in user's own tenant). Each page and form then asks the API's access policy
//! ([`tenant_service::access::authorize`]) for its action, so a role sees and does in the portal
//! exactly what its API credentials could: another tenant is "not found", a missing right
//! "not allowed".

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use tenant_core::Tenant;
use tenant_service::ServiceError;
use tenant_service::access::{self, Action};
use tenant_service::principal::Principal;

use crate::http::extract::parse_tenant_id;
use crate::state::AppState;
use crate::ui::context::UiContext;
use crate::ui::error::UiError;
use crate::ui::host::Site;

/// Which area a tenant page is shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// `/admin/tenants/{id}`: an operator.
    Admin,
    /// `/portal`: the tenant's own users.
    Portal,
}

/// A tenant page's tenant, caller and base path.
#[derive(Debug, Clone)]
pub struct TenantScope {
    /// The page layer's context.
    pub ctx: UiContext,
    /// The logged-in user.
    pub principal: Principal,
    /// The tenant.
    pub tenant: Tenant,
    /// `/admin/tenants/{id}` or `/portal`.
    pub base: String,
    /// The area.
    pub area: Area,
}

impl TenantScope {
    /// Whether the access policy lets the caller do `action` on this tenant.
    pub fn may(&self, action: Action) -> bool {
        self.allow(action).is_ok()
    }

    /// The access policy's decision for `action` on this tenant.
    pub fn allow(&self, action: Action) -> Result<(), UiError> {
        access::authorize(&self.principal, Some(action), Some(Some(self.tenant.id)))
            .map_err(UiError::from)
    }

    /// A path under this tenant's pages.
    pub fn path(&self, rest: &str) -> String {
        format!("{}{rest}", self.base)
    }
}

/// The path and query of a request, to come back to after logging in.
fn here(req: &HttpRequest) -> String {
    req.uri()
        .path_and_query()
        .map_or_else(|| req.path().to_owned(), |pq| pq.as_str().to_owned())
}

/// The logged-in user, or a redirect to the login page.
fn logged_in(req: &HttpRequest) -> Result<(UiContext, Principal), UiError> {
    let ctx = req
        .extensions()
        .get::<UiContext>()
        .cloned()
        .ok_or_else(|| {
            UiError::Api(crate::http::error::ApiError::Internal(
                "no page layer".into(),
            ))
        })?;
    let principal = ctx
        .principal
        .clone()
        .ok_or_else(|| UiError::Login { next: here(req) })?;
    Ok((ctx, principal))
}

impl FromRequest for TenantScope {
    type Error = UiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, UiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = logged_in(req);
        let id = req.match_info().get("id").map(str::to_owned);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let (ctx, principal) = found?;
            let state = state.ok_or_else(|| {
                UiError::Api(crate::http::error::ApiError::Internal("no state".into()))
            })?;
            let (tenant, base, area) = match id {
                Some(raw) => {
                    // The admin: operators on the dashboard's host only.
                    if matches!(ctx.site, Site::Tenant(_)) {
                        return Err(ServiceError::NotFound("page").into());
                    }
                    match &principal {
                        Principal::Operator { .. } => {}
                        Principal::Tenant { .. } => {
                            return Err(UiError::Redirect("/portal".into()));
                        }
                        Principal::Gateway { .. } => return Err(ServiceError::Forbidden.into()),
                    }
                    let id = parse_tenant_id(&raw)?;
                    let tenant = state.control.tenant(id).await?;
                    (tenant, format!("/admin/tenants/{id}"), Area::Admin)
                }
                None => {
                    let tenant = match (&ctx.site, &principal) {
                        (Site::Tenant(t), _) => (**t).clone(),
                        (Site::Admin, Principal::Tenant { tenant_id, .. }) => {
                            state.control.tenant(*tenant_id).await?
                        }
                        (Site::Admin, _) => return Err(UiError::Redirect("/admin".into())),
                    };
                    (tenant, "/portal".to_owned(), Area::Portal)
                }
            };
            let scope = TenantScope {
                ctx,
                principal,
                tenant,
                base,
                area,
            };
            // Another tenant's user is told there is no such tenant, as by the API.
            scope.allow(Action::ReadTenant)?;
            Ok(scope)
        })
    }
}

/// An operator on the dashboard's host (the tenants list, the audit log, the gateway).
#[derive(Debug, Clone)]
pub struct OperatorPage {
    /// The page layer's context.
    pub ctx: UiContext,
    /// The operator.
    pub principal: Principal,
}

impl FromRequest for OperatorPage {
    type Error = UiError;
    type Future = std::future::Ready<Result<Self, UiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(logged_in(req).and_then(|(ctx, principal)| {
            if matches!(ctx.site, Site::Tenant(_)) {
                return Err(ServiceError::NotFound("page").into());
            }
            match principal {
                Principal::Operator { .. } => Ok(OperatorPage { ctx, principal }),
                Principal::Tenant { .. } => Err(UiError::Redirect("/portal".into())),
                Principal::Gateway { .. } => Err(ServiceError::Forbidden.into()),
            }
        }))
    }
}
