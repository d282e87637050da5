//! Every HTTP route of the server, in one table.
//!
//! | route | what |
//! |---|---|
//! | `GET /health` | liveness: the process runs |
//! | `GET /ready` | readiness: database reachable, search index loaded (503 otherwise) |
//! | `GET /metrics` | Prometheus metrics |
//!
//! Later issues add here: `/graphql` (driver API), `/ocpi/versions` and `/ocpi/{version}/{module}`
//! (roaming), `/webhooks/stripe`, `/.well-known/jwks.json`.

use actix_web::web;

use crate::health;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health::health))
        .route("/ready", web::get().to(health::ready))
        .route("/metrics", web::get().to(health::metrics));
}
