//! What the page layer ([`crate::ui::session::ui_layer`]) learnt about a request: the user,
//! the CSRF token, the site; handlers take it as an extractor.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use tenant_service::principal::Principal;

use crate::ui::host::Site;

/// What the layer learnt about a request, for the handlers.
#[derive(Debug, Clone)]
pub struct UiContext {
    /// The logged-in user, if any.
    pub principal: Option<Principal>,
    /// The CSRF token to put in forms.
    pub csrf: String,
    /// Which site the host serves.
    pub site: Site,
}

impl UiContext {
    /// Whether an operator is logged in.
    pub fn is_operator(&self) -> bool {
        matches!(self.principal, Some(Principal::Operator { .. }))
    }
}

impl FromRequest for UiContext {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<UiContext>()
                .cloned()
                .ok_or_else(|| actix_web::error::ErrorInternalServerError("no page layer")),
        )
    }
}
