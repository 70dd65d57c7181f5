//! The HTTP edge: the [`server`] (`/metrics`, `/health`, `/ready`), the
//! Prometheus text format of the registry ([`exposition`]) and the
//! [`dashboard`] with its predict form. Everything it serves is read from
//! shared state, so a request never blocks the pipeline.

pub mod dashboard;
pub mod exposition;
pub mod server;

use actix_web::{web, HttpResponse};

/// `Allow` of a resource that answers GET and HEAD.
pub const GET_HEAD: &str = "GET, HEAD";

/// The route for the methods a resource does not answer: 405 with the
/// `Allow` header listing those it does (RFC 9110 15.5.6).
pub fn not_allowed(allow: &'static str) -> actix_web::Route {
    web::route().to(move || async move {
        HttpResponse::MethodNotAllowed()
            .insert_header((actix_web::http::header::ALLOW, allow))
            .finish()
    })
}
