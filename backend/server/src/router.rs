//! Every HTTP route of the server, in one table.
//!
//! | route | what |
//! |---|---|
//! | `GET /health` | liveness: the process runs |
//! | `GET /ready` | readiness: database reachable, search index loaded (503 otherwise) |
//! | `GET /metrics` | Prometheus metrics |
//! | `POST /graphql` | the driver API (one operation per request, rate-limited per IP) |
//! | `GET /graphql` | GraphiQL, when enabled (`EMSP_GRAPHIQL`) |
//! | `GET /graphql` + `Upgrade: websocket` | subscriptions (graphql-transport-ws) |
//! | `GET /.well-known/jwks.json` | public keys of access tokens |
//! | `GET /invoices/{id}.pdf`, `.csv`, `.xml` | a fleet invoice or credit note (bearer token; ops, or a manager of that fleet) |
//! | `GET /ocpi/versions` | OCPI: the versions we speak (any partner token, token A included) |
//! | `GET /ocpi/{version}` | OCPI: the modules of a version |
//! | `GET/POST/PUT/DELETE /ocpi/{version}/credentials` | OCPI: registration |
//! | `GET/PUT/PATCH /ocpi/{version}/locations/{cc}/{pid}/{location_id}[/{evse_uid}[/{connector_id}]]` | OCPI: locations pushed by CPOs |
//! | `GET/PUT/DELETE /ocpi/{version}/tariffs/{cc}/{pid}/{tariff_id}` | OCPI: tariffs pushed by CPOs |
//! | `GET/PUT /ocpi/2.2.1/hubclientinfo/{cc}/{pid}` | OCPI: a hub's connected parties |
//! | `POST /ocpi/{version}/commands/{command}/{id}` | OCPI: the result of a command we sent |
//! | `GET/PUT/PATCH /ocpi/{version}/sessions/{cc}/{pid}/{session_id}` | OCPI: sessions pushed by CPOs |
//! | `POST /ocpi/{version}/cdrs`, `GET /ocpi/{version}/cdrs/{cc}/{pid}/{cdr_id}` | OCPI: CDRs (the GET is the POST's `Location`) |
//! | `POST /webhooks/stripe` | Stripe events (signature verified, each applied once) |
//! | `GET /ocpi/{version}/tokens` | OCPI: our tokens, paginated (Sender) |
//! | `POST /ocpi/{version}/tokens/{uid}/authorize` | OCPI: real-time authorization of a token |
//!
//! Every `/ocpi` answer, errors and unknown paths included, carries `X-Request-ID` and
//! `X-Correlation-ID` (`emsp_roaming::ocpi_headers`).
//!
//! Later issues add here: OICP, OCHP and eMIP.

use actix_web::web;
use emsp_roaming::{credentials, hubclientinfo, receivers, sessions, tokens, versions};

use crate::{api, health, invoice_downloads, payments, ws};

pub fn routes(cfg: &mut web::ServiceConfig, max_body_bytes: usize) {
    cfg.route("/health", web::get().to(health::health))
        .route("/ready", web::get().to(health::ready))
        .route("/metrics", web::get().to(health::metrics))
        .route("/.well-known/jwks.json", web::get().to(api::jwks))
        .route("/invoices/{file}", web::get().to(invoice_downloads::download))
        .route("/webhooks/stripe", web::post().to(payments::stripe_webhook))
        .service(
            web::resource("/graphql")
                .wrap(actix_web::middleware::from_fn(api::rate_limit))
                .route(web::post().to(api::execute))
                .route(web::get().guard(actix_web::guard::fn_guard(ws::is_upgrade)).to(ws::upgrade))
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
                .route("/{version}/commands/{command}/{id}", web::post().to(sessions::post_command_result))
                .service(
                    web::resource("/{version}/sessions/{cc}/{pid}/{session_id}")
                        .route(web::get().to(sessions::get_session))
                        .route(web::put().to(sessions::put_session))
                        .route(web::patch().to(sessions::patch_session)),
                )
                .route("/{version}/cdrs", web::post().to(sessions::post_cdr))
                .route("/{version}/cdrs/{cc}/{pid}/{cdr_id}", web::get().to(sessions::get_cdr))
                .route("/{version}/tokens", web::get().to(tokens::list))
                .route("/{version}/tokens/{uid}/authorize", web::post().to(tokens::authorize))
                .service(
                    web::resource("/{version}/tariffs/{cc}/{pid}/{tariff_id}")
                        .route(web::get().to(receivers::get_tariff))
                        .route(web::put().to(receivers::put_tariff))
                        .route(web::delete().to(receivers::delete_tariff)),
                ),
        );
}
