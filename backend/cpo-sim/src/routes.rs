//! Every route of the simulator in one table. The OCPI modules sit under `/ocpi/{version}` behind
//! the transport layer (faults, request ids); `/admin` is for CLI users and is left untouched by
//! faults. Trailing slashes are trimmed, since peers join endpoint URLs both ways.

use actix_web::middleware::{NormalizePath, TrailingSlash, from_fn};
use actix_web::{HttpResponse, web};

use crate::envelope::Envelope;
use crate::faults::FaultsConfig;
use crate::state::SimState;
use crate::{charging, credentials, locations, tokens, transport};

pub fn configure(cfg: &mut web::ServiceConfig, version: &str) {
    cfg.service(
        web::scope("/ocpi")
            .wrap(from_fn(transport::ocpi_layer))
            .route("/versions", web::get().to(credentials::versions))
            .service(
                web::scope(&format!("/{version}"))
                    .route("", web::get().to(credentials::version_details))
                    .service(
                        web::resource("/credentials")
                            .route(web::get().to(credentials::get_credentials))
                            .route(web::post().to(credentials::post_credentials))
                            .route(web::put().to(credentials::put_credentials))
                            .route(web::delete().to(credentials::delete_credentials)),
                    )
                    .route("/locations", web::get().to(locations::list_locations))
                    .route("/locations/{location_id}", web::get().to(locations::location))
                    .route("/locations/{location_id}/{evse_uid}", web::get().to(locations::evse))
                    .route("/locations/{location_id}/{evse_uid}/{connector_id}", web::get().to(locations::connector))
                    .route("/tariffs", web::get().to(locations::list_tariffs))
                    .route("/sessions", web::get().to(locations::list_sessions))
                    .route("/sessions/{session_id}/charging_preferences", web::put().to(charging::charging_preferences))
                    .route("/cdrs", web::get().to(locations::list_cdrs))
                    .service(
                        web::resource("/tokens/{country_code}/{party_id}/{uid}")
                            .route(web::get().to(tokens::get_token))
                            .route(web::put().to(tokens::put_token))
                            .route(web::patch().to(tokens::patch_token)),
                    )
                    .route("/commands/{command}", web::post().to(charging::command)),
            )
            .default_service(web::to(not_found)),
    )
    .service(web::resource("/admin/faults").route(web::get().to(get_faults)).route(web::post().to(set_faults)));
}

pub fn normalize_path() -> NormalizePath {
    NormalizePath::new(TrailingSlash::Trim)
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(Envelope::<()>::error(2000, "unknown endpoint".to_owned()))
}

/// `GET /admin/faults`: the current switches.
async fn get_faults(state: web::Data<SimState>) -> HttpResponse {
    HttpResponse::Ok().json(state.faults.snapshot())
}

/// `POST /admin/faults` with a `FaultsConfig`; answers the switches now in force.
async fn set_faults(state: web::Data<SimState>, config: web::Json<FaultsConfig>) -> HttpResponse {
    state.faults.apply(&config);
    tracing::info!(faults = ?state.faults.snapshot(), "faults changed");
    HttpResponse::Ok().json(state.faults.snapshot())
}
