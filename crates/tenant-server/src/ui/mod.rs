//! The admin dashboard (`/admin`) and the tenant portal (`/portal`, or a tenant's own host
//! `{slug}.{SAAS_BASE_DOMAIN}`): server-rendered HTML over the same use cases as the API.
//!
//! - [`session`]: the page layer (host → site, session cookies, CSRF cookie, same-origin check,
//!   CSP and the other security headers); [`form`]: CSRF-checked form bodies;
//! - [`host`]: which site a host serves; [`host_api`]: the tenant-scoped API on a tenant's host
//!   (`/tenant/…`); [`scope`]: who may see which pages;
//! - [`auth`]: `/`, log in and out, accept an invite; [`admin`]: the operators' pages;
//!   [`gateways`]: the operators' gateway fleet pages;
//!   [`tenant_pages`]: a tenant's pages, shared by the admin and the portal;
//! - [`layout`]: the page shell and error pages; [`assets`]: the stylesheet and the script.
//!
//! The API's authentication middleware lets these paths through
//! (`crate::http::authenticate::is_ui_path`): the page layer authenticates them by cookie.
//! See `docs/dashboard.md`.

use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, Scope, web};

use crate::ui::session::ui_layer;

pub mod admin;
pub mod assets;
pub mod auth;
pub mod context;
pub mod error;
pub mod form;
pub mod gateways;
pub mod host;
pub mod host_api;
pub mod layout;
pub mod scope;
pub mod session;
pub mod tenant_pages;

/// A tenant's pages, relative to `path` (`/tenants/{id}` in the admin, `/portal`). Paths
/// without a variable segment are matched without a regular expression: each one compiled costs
/// every worker about a millisecond at start in a debug build.
fn tenant_scope(path: &str) -> Scope {
    use crate::ui::tenant_pages as p;
    let post = web::post;
    web::scope(path)
        .route("", web::get().to(p::overview))
        .route("/channels", post().to(p::add_channel))
        .service(
            web::scope("/channels/{kind}")
                .route("/credentials", post().to(p::set_credentials))
                .route("/enabled", post().to(p::set_channel_enabled))
                .route("/delete", post().to(p::delete_channel)),
        )
        .route("/keys", web::get().to(p::keys))
        .route("/keys", post().to(p::issue_key))
        .service(
            web::scope("/keys/{kid}")
                .route("/revoke", post().to(p::revoke_key))
                .route("/rotate", post().to(p::rotate_key)),
        )
        .route("/users", web::get().to(p::users))
        .route("/users", post().to(p::invite_user))
        .service(
            web::scope("/users/{uid}")
                .route("/disabled", post().to(p::set_user_disabled))
                .route("/delete", post().to(p::delete_user)),
        )
        .route("/webhooks", web::get().to(p::webhooks))
        .route("/webhooks", post().to(p::create_webhook))
        .service(
            web::scope("/webhooks/{wid}")
                .route("", web::get().to(p::webhook))
                .route("/test", post().to(p::test_webhook))
                .route("/enabled", post().to(p::set_webhook_enabled))
                .route("/delete", post().to(p::delete_webhook))
                .service(
                    web::scope("/deliveries/{did}")
                        .route("", web::get().to(p::delivery))
                        .route("/replay", post().to(p::replay_delivery)),
                ),
        )
        .route("/audit", web::get().to(p::audit))
        .route("/sessions", web::get().to(p::sessions))
        .route("/usage", web::get().to(p::usage))
        .route("/settings", post().to(p::update_settings))
        .route("/status", post().to(admin::set_status))
        .route("/dedicated", post().to(admin::set_dedicated))
        .route("/delete", web::get().to(admin::confirm_delete))
        .route("/delete", post().to(admin::delete_tenant))
        .default_service(web::to(not_found))
}

/// A page that does not exist, as a page.
async fn not_found() -> HttpResponse {
    layout::plain_error(
        actix_web::http::StatusCode::NOT_FOUND,
        "Page not found",
        "There is no page at this address.",
    )
}

/// Registers the pages and the assets.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let admin = web::scope("/admin")
        .route("", web::get().to(admin::admin_home))
        .route("/tenants", web::get().to(admin::tenants))
        .route("/tenants", web::post().to(admin::create_tenant))
        .route("/audit", web::get().to(admin::audit))
        .route("/gateway", web::get().to(admin::gateway))
        .route("/gateways", web::get().to(gateways::list))
        .route("/gateways", web::post().to(gateways::create))
        .route(
            "/gateways/place-pending",
            web::post().to(gateways::place_pending),
        )
        .service(
            web::scope("/gateways/{gid}")
                .route("", web::get().to(gateways::detail))
                .route("/capacity", web::post().to(gateways::set_capacity))
                .route("/draining", web::post().to(gateways::set_draining))
                .route("/rotate", web::post().to(gateways::rotate))
                .route("/delete", web::post().to(gateways::delete)),
        )
        .route(
            "/gateway/config.json",
            web::get().to(admin::gateway_download),
        );
    let admin = admin
        .service(tenant_scope("/tenants/{id}"))
        .default_service(web::to(not_found))
        .wrap(from_fn(ui_layer));
    let portal = tenant_scope("/portal").wrap(from_fn(ui_layer));
    cfg.route("/ui/app.css", web::get().to(assets::css))
        .route("/ui/app.js", web::get().to(assets::js))
        .route("/ui/icon.svg", web::get().to(assets::icon))
        .route("/", web::get().to(auth::root))
        .service(
            web::resource("/login")
                .wrap(from_fn(ui_layer))
                .route(web::get().to(auth::login_form))
                .route(web::post().to(auth::login)),
        )
        .service(
            web::resource("/logout")
                .wrap(from_fn(ui_layer))
                .route(web::post().to(auth::logout)),
        )
        .service(
            web::resource("/invite")
                .wrap(from_fn(ui_layer))
                .route(web::get().to(auth::invite_form))
                .route(web::post().to(auth::accept_invite)),
        )
        .service(admin)
        .service(portal);
}
