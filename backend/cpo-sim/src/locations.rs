//! Sender interfaces the EMSP pulls from: locations (list and single objects), tariffs, sessions
//! and CDRs. Lists go through `paging::page`; everything is served from memory as stored.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

use crate::charging::session_json;
use crate::envelope::Envelope;
use crate::error::SimError;
use crate::paging::{PageQuery, page};
use crate::state::{SimState, str_field};
use crate::transport::authorize;

pub async fn list_locations(
    state: web::Data<SimState>,
    req: HttpRequest,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, SimError> {
    authorize(&state, &req, false)?;
    let inner = state.inner.lock();
    page(&state, &req, &query, &inner.locations)
}

pub async fn location(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, SimError> {
    authorize(&state, &req, false)?;
    let inner = state.inner.lock();
    let location = inner.location(&path).ok_or(SimError::UnknownLocation)?;
    Ok(HttpResponse::Ok().json(Envelope::ok(location)))
}

pub async fn evse(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, SimError> {
    authorize(&state, &req, false)?;
    let (location_id, evse_uid) = path.into_inner();
    let inner = state.inner.lock();
    let evse = inner.evse(&location_id, &evse_uid).ok_or(SimError::UnknownLocation)?;
    Ok(HttpResponse::Ok().json(Envelope::ok(evse)))
}

pub async fn connector(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, SimError> {
    authorize(&state, &req, false)?;
    let (location_id, evse_uid, connector_id) = path.into_inner();
    let inner = state.inner.lock();
    let connector = inner
        .evse(&location_id, &evse_uid)
        .and_then(|evse| evse.get("connectors")?.as_array())
        .and_then(|connectors| connectors.iter().find(|c| str_field(c, "id") == Some(connector_id.as_str())))
        .ok_or(SimError::UnknownLocation)?;
    Ok(HttpResponse::Ok().json(Envelope::ok(connector)))
}

pub async fn list_tariffs(
    state: web::Data<SimState>,
    req: HttpRequest,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, SimError> {
    authorize(&state, &req, false)?;
    let inner = state.inner.lock();
    page(&state, &req, &query, &inner.tariffs)
}

pub async fn list_sessions(
    state: web::Data<SimState>,
    req: HttpRequest,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, SimError> {
    authorize(&state, &req, false)?;
    let sessions: Vec<Value> = {
        let inner = state.inner.lock();
        inner.sessions.values().map(|s| session_json(&state, s)).collect()
    };
    page(&state, &req, &query, &sessions)
}

pub async fn list_cdrs(
    state: web::Data<SimState>,
    req: HttpRequest,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, SimError> {
    authorize(&state, &req, false)?;
    let inner = state.inner.lock();
    page(&state, &req, &query, &inner.cdrs)
}
