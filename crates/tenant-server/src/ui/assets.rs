//! The dashboard's stylesheet and script, compiled into the binary and served by it (no CDN,
//! no build step).

use actix_web::HttpResponse;

const CSS: &str = include_str!("static/app.css");
const JS: &str = include_str!("static/app.js");
const ICON: &str = include_str!("static/icon.svg");

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Content-Type", content_type))
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(body)
}

/// `GET /ui/app.css`.
pub async fn css() -> HttpResponse {
    asset("text/css; charset=utf-8", CSS)
}

/// `GET /ui/app.js`.
pub async fn js() -> HttpResponse {
    asset("text/javascript; charset=utf-8", JS)
}

/// `GET /ui/icon.svg`.
pub async fn icon() -> HttpResponse {
    asset("image/svg+xml", ICON)
}
