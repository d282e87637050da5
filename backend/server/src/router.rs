//! Every HTTP route of the server, in one table.
//!
//! | route | what |
//! |---|---|
//! | `GET /health` | liveness: the process runs |
//! | `GET /ready` | readiness: database reachable, search index loaded (503 otherwise) |
//! | `GET /metrics` | Prometheus metrics |
//! | `POST /graphql` | the driver API (one operation per request, rate-limited per IP) |
//! | `GET /graphql` | GraphiQL, when enabled (`EMSP_GRAPHIQL`) |
//! | `GET /.well-known/jwks.json` | public keys of access tokens |
//! | `GET /ocpi/versions` | OCPI: the versions we speak (any partner token, token A included) |
//! | `GET /ocpi/{version}` | OCPI: the modules of a version |
//! | `GET/POST/PUT/DELETE /ocpi/{version}/credentials` | OCPI: registration |
//! | `GET/PUT/PATCH /ocpi/{version}/locations/{cc}/{pid}/{location_id}[/{evse_uid}[/{connector_id}]]` | OCPI: locations pushed by CPOs |
//! | `GET/PUT/DELETE /ocpi/{version}/tariffs/{cc}/{pid}/{tariff_id}` | OCPI: tariffs pushed by CPOs |
//! | `GET/PUT /ocpi/2.2.1/hubclientinfo/{cc}/{pid}` | OCPI: a hub's connected parties |
//!
//! Every `/ocpi` answer, errors and unknown paths included, carries `X-Request-ID` and
//! `X-Correlation-ID` (`emsp_roaming::ocpi_headers`).
//!
//! Later issues add here: the other OCPI modules, `/webhooks/stripe`.

use actix_web::web;
use emsp_roaming::{credentials, hubclientinfo, receivers, versions};

use crate::{api, health};

pub fn routes(cfg: &mut web::ServiceConfig, max_body_bytes: usize) {
    cfg.route("/health", web::get().to(health::health))
        .route("/ready", web::get().to(health::ready))
        .route("/metrics", web::get().to(health::metrics))
        .route("/.well-known/jwks.json", web::get().to(api::jwks))
        .service(
            web::resource("/graphql")
                .wrap(actix_web::middleware::from_fn(api::rate_limit))
                .route(web::post().to(api::execute))
                .route(web::get().to(api::graphiql)),
        )
        .service(
            web::scope("/ocpi")
                .wrap(actix_web::middleware::from_fn(emsp_roaming::ocpi_headers))
                .app_data(emsp_roaming::json_config(max_body_bytes))
                .default_service(web::to(emsp_roaming::not_found))
                .route("/versions", web::get().to(versions::list))
                .route("/{version}", web::get().to(versions::details))
                .service(
                    web::resource("/{version}/credentials")
                        .route(web::get().to(credentials::get))
                        .route(web::post().to(credentials::post))
                        .route(web::put().to(credentials::put))
                        .route(web::delete().to(credentials::delete)),
                )
                .service(
                    web::resource("/{version}/locations/{cc}/{pid}/{location_id}")
                        .route(web::get().to(receivers::get_location))
                        .route(web::put().to(receivers::put_location))
                        .route(web::patch().to(receivers::patch_location)),
                )
                .service(
                    web::resource("/{version}/locations/{cc}/{pid}/{location_id}/{evse_uid}")
                        .route(web::get().to(receivers::get_evse))
                        .route(web::put().to(receivers::put_evse))
                        .route(web::patch().to(receivers::patch_evse)),
                )
                .service(
                    web::resource("/{version}/locations/{cc}/{pid}/{location_id}/{evse_uid}/{connector_id}")
                        .route(web::get().to(receivers::get_connector))
                        .route(web::put().to(receivers::put_connector))
                        .route(web::patch().to(receivers::patch_connector)),
                )
                .service(
                    web::resource("/2.2.1/hubclientinfo/{cc}/{pid}")
                        .route(web::get().to(hubclientinfo::get))
                        .route(web::put().to(hubclientinfo::put)),
                )
                .service(
                    web::resource("/{version}/tariffs/{cc}/{pid}/{tariff_id}")
                        .route(web::get().to(receivers::get_tariff))
                        .route(web::put().to(receivers::put_tariff))
                        .route(web::delete().to(receivers::delete_tariff)),
                ),
        );
}
