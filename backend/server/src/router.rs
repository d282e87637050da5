//! Every HTTP route of the server, in one table.
//!
//! | route | what |
//! |---|---|
//! | `GET /health` | liveness: the process runs |
//! | `GET /ready` | readiness: database reachable, search index loaded (503 otherwise) |
//! | `GET /metrics` | Prometheus metrics |
//! | `GET /ocpi/versions` | OCPI: the versions we speak (any partner token, token A included) |
//! | `GET /ocpi/{version}` | OCPI: the modules of a version |
//! | `GET/POST/PUT/DELETE /ocpi/{version}/credentials` | OCPI: registration |
//!
//! Later issues add here: `/graphql` (driver API), the other OCPI modules, `/webhooks/stripe`,
//! `/.well-known/jwks.json`.

use actix_web::web;
use emsp_roaming::{credentials, versions};

use crate::health;

pub fn routes(cfg: &mut web::ServiceConfig, max_body_bytes: usize) {
    cfg.route("/health", web::get().to(health::health))
        .route("/ready", web::get().to(health::ready))
        .route("/metrics", web::get().to(health::metrics))
        .service(
            web::scope("/ocpi")
                .app_data(emsp_roaming::json_config(max_body_bytes))
                .route("/versions", web::get().to(versions::list))
                .route("/{version}", web::get().to(versions::details))
                .service(
                    web::resource("/{version}/credentials")
                        .route(web::get().to(credentials::get))
                        .route(web::post().to(credentials::post))
                        .route(web::put().to(credentials::put))
                        .route(web::delete().to(credentials::delete)),
                ),
        );
}
