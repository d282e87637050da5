//! The Commands receiver and the charging sessions it starts.
//!
//! A command gets its synchronous `CommandResponse` at once; what the charger "does" happens in a
//! background task, as with a real CPO: after `command_delay` the `CommandResult` goes to the
//! EMSP's `response_url`; an accepted `START_SESSION` then PUTs a Session, PATCHes it every `tick`
//! with the energy of that tick as a new charging period, and when stopped (or after
//! `max_duration`) PATCHes it `COMPLETED` and POSTs the CDR, priced from the connector's tariff.
//! The EVSE's status follows (CHARGING, then AVAILABLE) and is pushed like any status change.
//! The `command` fault overrides the outcome for tests.

use std::sync::Arc;
use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Duration, Utc};
use reqwest::Method;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;

use crate::client::{post_to, push};
use crate::envelope::{Envelope, format_datetime};
use crate::error::SimError;
use crate::faults::CommandOutcome;
use crate::options::SimVersion;
use crate::received::ReceivedCommand;
use crate::state::{SimState, str_field};
use crate::status::set_and_push_status;
use crate::transport::authorize;

/// A simulated charging session.
#[derive(Debug, Clone)]
pub struct ChargingSession {
    pub id: String,
    pub location_id: String,
    pub evse_uid: String,
    pub connector_id: String,
    /// The Token object of the START_SESSION command.
    pub token: Value,
    pub authorization_reference: Option<String>,
    /// `COMMAND` (remote start), `AUTH_REQUEST` (real-time authorization) or `WHITELIST`.
    pub auth_method: &'static str,
    pub start: DateTime<Utc>,
    /// Time charged so far (real time: timestamps sent to the EMSP are never in the future).
    pub elapsed: Duration,
    pub kwh: f64,
    pub power_kw: f64,
    pub periods: Vec<Period>,
    pub currency: String,
    pub tariff: Option<Value>,
    pub completed: bool,
    pub stop_requested: bool,
    pub last_updated: DateTime<Utc>,
    /// The location as it was at the start, for the CDR and for 2.1.1 sessions.
    pub location: Value,
    pub stop: Arc<Notify>,
}

#[derive(Debug, Clone)]
pub struct Period {
    pub start: DateTime<Utc>,
    pub kwh: f64,
    pub hours: f64,
}

#[derive(Serialize)]
struct CommandResponse {
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout: Option<u32>,
}

#[derive(Serialize)]
struct CommandResult {
    result: &'static str,
}

#[derive(Serialize)]
struct Price {
    excl_vat: f64,
    incl_vat: f64,
}

#[derive(Serialize)]
struct Dimension {
    #[serde(rename = "type")]
    kind: &'static str,
    volume: f64,
}

#[derive(Serialize)]
struct ChargingPeriod {
    start_date_time: String,
    dimensions: Vec<Dimension>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tariff_id: Option<String>,
}

#[derive(Serialize)]
struct CdrToken {
    #[serde(skip_serializing_if = "Option::is_none")]
    country_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    party_id: Option<String>,
    uid: String,
    #[serde(rename = "type")]
    kind: String,
    contract_id: String,
}

#[derive(Serialize)]
struct Session221 {
    country_code: String,
    party_id: String,
    id: String,
    start_date_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_date_time: Option<String>,
    kwh: f64,
    cdr_token: CdrToken,
    auth_method: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorization_reference: Option<String>,
    location_id: String,
    evse_uid: String,
    connector_id: String,
    currency: String,
    charging_periods: Vec<ChargingPeriod>,
    total_cost: Price,
    status: &'static str,
    last_updated: String,
}

#[derive(Serialize)]
struct Session211 {
    id: String,
    start_datetime: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_datetime: Option<String>,
    kwh: f64,
    auth_id: String,
    auth_method: &'static str,
    location: Value,
    currency: String,
    charging_periods: Vec<ChargingPeriod>,
    total_cost: f64,
    status: &'static str,
    last_updated: String,
}

/// A PATCH of a running session: the new charging periods only (the receiver appends them).
#[derive(Serialize)]
struct SessionPatch {
    kwh: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    charging_periods: Vec<ChargingPeriod>,
    /// A Price in 2.2.1, a number in 2.1.1.
    total_cost: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_date_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_datetime: Option<String>,
    last_updated: String,
}

#[derive(Serialize)]
struct CdrLocation {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    address: String,
    city: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    postal_code: Option<String>,
    country: String,
    coordinates: Value,
    evse_uid: String,
    evse_id: String,
    connector_id: String,
    connector_standard: String,
    connector_format: String,
    connector_power_type: String,
}

#[derive(Serialize)]
struct Cdr221 {
    country_code: String,
    party_id: String,
    id: String,
    start_date_time: String,
    end_date_time: String,
    session_id: String,
    cdr_token: CdrToken,
    auth_method: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorization_reference: Option<String>,
    cdr_location: CdrLocation,
    currency: String,
    tariffs: Vec<Value>,
    charging_periods: Vec<ChargingPeriod>,
    total_cost: Price,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_fixed_cost: Option<Price>,
    total_energy: f64,
    total_energy_cost: Price,
    total_time: f64,
    last_updated: String,
}

#[derive(Serialize)]
struct Cdr211 {
    id: String,
    start_date_time: String,
    stop_date_time: String,
    auth_id: String,
    auth_method: &'static str,
    location: Value,
    currency: String,
    tariffs: Vec<Value>,
    charging_periods: Vec<ChargingPeriod>,
    total_cost: f64,
    total_energy: f64,
    total_time: f64,
    last_updated: String,
}

/// A session about to start: from a START_SESSION that passed the synchronous checks, or from a
/// driver at the charger.
pub(crate) struct StartRequest {
    pub location_id: String,
    pub evse_uid: String,
    pub connector_id: String,
    pub token: Value,
    pub reference: Option<String>,
}

/// What a command does after its synchronous answer.
enum Action {
    Start(StartRequest),
    Stop { session_id: String },
    Reserve { reservation_id: String, location_id: String, evse_uid: String },
    Cancel { reservation_id: String },
    Unlock,
}

pub async fn command(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, SimError> {
    authorize(&state, &req, false)?;
    let command = path.into_inner().to_ascii_uppercase();
    let body: Value =
        serde_json::from_slice(&body).map_err(|_| SimError::InvalidParameters("body is not JSON".to_owned()))?;
    let Some(response_url) = str_field(&body, "response_url").map(str::to_owned) else {
        return Err(SimError::InvalidParameters("`response_url` is missing".to_owned()));
    };
    let outcome = state.faults.command_outcome();
    let decided = decide(&state, &command, &body);
    let (result, action) = match decided {
        Ok(_) if outcome == CommandOutcome::Rejected => ("REJECTED", None),
        Ok(decision) => decision,
        Err(error) => {
            record(&state, &req, &command, &body, "ERROR");
            return Err(error);
        }
    };
    record(&state, &req, &command, &body, result);
    tracing::info!(%command, result, "command received");
    if let Some(action) = action {
        let task_state = state.clone().into_inner();
        state.spawn(async move { execute(task_state, action, response_url, outcome).await });
    }
    let timeout = (state.version == SimVersion::V2_2_1).then_some(state.charging.command_timeout_s);
    Ok(HttpResponse::Ok().json(Envelope::ok(CommandResponse { result, timeout })))
}

/// `PUT /sessions/{session_id}/charging_preferences` (Smart Charging, 2.2.1): a running session
/// accepts preferences with a known profile; the answer is a `ChargingPreferencesResponse`. Kept
/// among the received commands (as `CHARGING_PREFERENCES`) for tests.
pub async fn charging_preferences(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, SimError> {
    authorize(&state, &req, false)?;
    let session_id = path.into_inner();
    let body: Value =
        serde_json::from_slice(&body).map_err(|_| SimError::InvalidParameters("body is not JSON".to_owned()))?;
    let Some(profile) = str_field(&body, "profile_type").map(str::to_owned) else {
        return Err(SimError::InvalidParameters("`profile_type` is missing".to_owned()));
    };
    let running = state.inner.lock().sessions.get(&session_id).map(|s| !s.completed && !s.stop_requested);
    let answer = match running {
        None => return Err(SimError::InvalidParameters(format!("unknown session {session_id}"))),
        Some(false) => "NOT_POSSIBLE",
        Some(true) if !["CHEAP", "FAST", "GREEN", "REGULAR"].contains(&profile.as_str()) => {
            "PROFILE_TYPE_NOT_SUPPORTED"
        }
        Some(true) => "ACCEPTED",
    };
    record(&state, &req, "CHARGING_PREFERENCES", &body, answer);
    Ok(HttpResponse::Ok().json(Envelope::ok(answer)))
}

fn record(state: &SimState, req: &HttpRequest, command: &str, body: &Value, response: &str) {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let to = header("OCPI-to-country-code").zip(header("OCPI-to-party-id"));
    state.inner.lock().commands.push(ReceivedCommand {
        command: command.to_owned(),
        body: body.clone(),
        response: response.to_owned(),
        to,
    });
}

/// The synchronous answer and what follows it; unknown objects are OCPI errors (2003).
fn decide(state: &SimState, command: &str, body: &Value) -> Result<(&'static str, Option<Action>), SimError> {
    let inner = state.inner.lock();
    let field = |name: &str| str_field(body, name).map(str::to_owned);
    let required = |name: &str| field(name).ok_or_else(|| SimError::InvalidParameters(format!("`{name}` is missing")));
    match command {
        "START_SESSION" | "RESERVE_NOW" => {
            let location_id = required("location_id")?;
            let location = inner.location(&location_id).ok_or(SimError::UnknownLocation)?;
            let token = body.get("token").filter(|t| t.is_object()).cloned();
            let Some(token) = token else {
                return Err(SimError::InvalidParameters("`token` is missing".to_owned()));
            };
            let evses = location.get("evses").and_then(Value::as_array).cloned().unwrap_or_default();
            let evse = match field("evse_uid") {
                Some(uid) => evses.iter().find(|e| str_field(e, "uid") == Some(uid.as_str())),
                None => evses.iter().find(|e| str_field(e, "status") == Some("AVAILABLE")).or_else(|| evses.first()),
            };
            let Some(evse) = evse else { return Err(SimError::UnknownLocation) };
            let evse_uid = str_field(evse, "uid").unwrap_or_default().to_owned();
            if command == "RESERVE_NOW" {
                let reservation_id = match body.get("reservation_id") {
                    Some(Value::String(id)) => id.clone(),
                    Some(Value::Number(id)) => id.to_string(),
                    _ => return Err(SimError::InvalidParameters("`reservation_id` is missing".to_owned())),
                };
                return Ok(("ACCEPTED", Some(Action::Reserve { reservation_id, location_id, evse_uid })));
            }
            let connectors = evse.get("connectors").and_then(Value::as_array).cloned().unwrap_or_default();
            let connector = match field("connector_id") {
                Some(id) => connectors.iter().find(|c| str_field(c, "id") == Some(id.as_str())),
                None => connectors.first(),
            };
            let Some(connector) = connector else { return Err(SimError::UnknownLocation) };
            let connector_id = str_field(connector, "id").unwrap_or_default().to_owned();
            let reference = field("authorization_reference");
            Ok((
                "ACCEPTED",
                Some(Action::Start(StartRequest { location_id, evse_uid, connector_id, token, reference })),
            ))
        }
        "STOP_SESSION" => {
            let session_id = required("session_id")?;
            match inner.sessions.get(&session_id) {
                Some(session) if !session.completed && !session.stop_requested => {
                    Ok(("ACCEPTED", Some(Action::Stop { session_id })))
                }
                _ => Ok(("UNKNOWN_SESSION", None)),
            }
        }
        "CANCEL_RESERVATION" if state.version == SimVersion::V2_2_1 => {
            let reservation_id = required("reservation_id")?;
            Ok(("ACCEPTED", Some(Action::Cancel { reservation_id })))
        }
        "UNLOCK_CONNECTOR" => {
            let (location_id, evse_uid, connector_id) =
                (required("location_id")?, required("evse_uid")?, required("connector_id")?);
            let known = inner
                .evse(&location_id, &evse_uid)
                .and_then(|e| e.get("connectors")?.as_array())
                .is_some_and(|cs| cs.iter().any(|c| str_field(c, "id") == Some(connector_id.as_str())));
            if !known {
                return Err(SimError::UnknownLocation);
            }
            Ok(("ACCEPTED", Some(Action::Unlock)))
        }
        _ => Ok(("NOT_SUPPORTED", None)),
    }
}

/// The `CommandResult` (2.2.1) or async `CommandResponse` (2.1.1, which has fewer results).
async fn send_result(state: &SimState, response_url: &str, result: &'static str) {
    let result = match (state.version, result) {
        (SimVersion::V2_1_1, "EVSE_OCCUPIED" | "EVSE_INOPERATIVE" | "FAILED" | "UNKNOWN_RESERVATION") => "REJECTED",
        (_, result) => result,
    };
    let body = serde_json::to_value(CommandResult { result }).unwrap_or(Value::Null);
    match post_to(state, response_url, &body).await {
        Ok(_) => tracing::info!(result, "command result sent"),
        Err(error) => tracing::warn!(%error, result, "command result not delivered"),
    }
}

async fn execute(state: Arc<SimState>, action: Action, response_url: String, outcome: CommandOutcome) {
    tokio::time::sleep(state.charging.command_delay).await;
    match outcome {
        CommandOutcome::NoResult => {
            tracing::info!("fault: no command result will be sent");
            return;
        }
        CommandOutcome::EvseOccupied => {
            send_result(&state, &response_url, "EVSE_OCCUPIED").await;
            return;
        }
        CommandOutcome::Late => {
            let late = std::time::Duration::from_secs(u64::from(state.charging.command_timeout_s))
                + std::time::Duration::from_millis(1_500);
            tracing::info!(?late, "fault: the command is carried out after its time limit");
            tokio::time::sleep(late).await;
        }
        CommandOutcome::Normal | CommandOutcome::Rejected => {}
    }
    match action {
        Action::Start(request) => start_session(state, response_url, request).await,
        Action::Stop { session_id } => {
            let stop = {
                let mut inner = state.inner.lock();
                inner.sessions.get_mut(&session_id).map(|session| {
                    session.stop_requested = true;
                    session.stop.clone()
                })
            };
            send_result(&state, &response_url, if stop.is_some() { "ACCEPTED" } else { "FAILED" }).await;
            if let Some(stop) = stop {
                stop.notify_one();
            }
        }
        Action::Reserve { reservation_id, location_id, evse_uid } => {
            let status = state
                .inner
                .lock()
                .evse(&location_id, &evse_uid)
                .and_then(|e| str_field(e, "status").map(str::to_owned));
            if status.as_deref() != Some("AVAILABLE") {
                send_result(&state, &response_url, blocked_result(status.as_deref())).await;
                return;
            }
            state.inner.lock().reservations.insert(reservation_id, (location_id.clone(), evse_uid.clone()));
            send_result(&state, &response_url, "ACCEPTED").await;
            set_and_push_status(&state, &location_id, &evse_uid, "RESERVED").await;
        }
        Action::Cancel { reservation_id } => {
            let reservation = state.inner.lock().reservations.remove(&reservation_id);
            match reservation {
                Some((location_id, evse_uid)) => {
                    send_result(&state, &response_url, "ACCEPTED").await;
                    set_and_push_status(&state, &location_id, &evse_uid, "AVAILABLE").await;
                }
                None => send_result(&state, &response_url, "UNKNOWN_RESERVATION").await,
            }
        }
        Action::Unlock => send_result(&state, &response_url, "ACCEPTED").await,
    }
}

fn blocked_result(status: Option<&str>) -> &'static str {
    match status {
        Some("OUTOFORDER" | "INOPERATIVE" | "REMOVED" | "PLANNED" | "UNKNOWN") | None => "EVSE_INOPERATIVE",
        _ => "EVSE_OCCUPIED",
    }
}

/// Connector power in kW from `max_electric_power` (2.2.1) or volts × amps (× 3 phases).
fn connector_kw(connector: &Value) -> f64 {
    if let Some(watts) = connector.get("max_electric_power").and_then(Value::as_f64) {
        return watts / 1000.0;
    }
    let volts = connector.get("max_voltage").or_else(|| connector.get("voltage")).and_then(Value::as_f64);
    let amps = connector.get("max_amperage").or_else(|| connector.get("amperage")).and_then(Value::as_f64);
    let phases = if str_field(connector, "power_type") == Some("AC_3_PHASE") { 3.0 } else { 1.0 };
    match (volts, amps) {
        (Some(v), Some(a)) => v * a * phases / 1000.0,
        _ => 11.0,
    }
}

fn tariff_id(connector: &Value) -> Option<String> {
    connector
        .get("tariff_ids")
        .and_then(|ids| ids.get(0))
        .or_else(|| connector.get("tariff_id"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

async fn start_session(state: Arc<SimState>, response_url: String, request: StartRequest) {
    let (location_id, evse_uid) = (request.location_id.clone(), request.evse_uid.clone());
    let session_id = match begin_session(&state, request, "COMMAND") {
        Ok(id) => id,
        Err(result) => {
            send_result(&state, &response_url, result).await;
            return;
        }
    };
    send_result(&state, &response_url, "ACCEPTED").await;
    set_and_push_status(&state, &location_id, &evse_uid, "CHARGING").await;
    run_session(state, session_id).await;
}

/// Checks the EVSE and the token and records a new session; on refusal, the `CommandResult` that
/// says why (`REJECTED`, `EVSE_OCCUPIED`, `EVSE_INOPERATIVE`).
pub(crate) fn begin_session(
    state: &SimState,
    request: StartRequest,
    auth_method: &'static str,
) -> Result<String, &'static str> {
    let StartRequest { location_id, evse_uid, connector_id, mut token, reference } = request;
    let now = Utc::now();
    let mut inner = state.inner.lock();
    if let (Some(peer), Some(fields)) = (&inner.peer, token.as_object_mut()) {
        // A 2.2.1 CdrToken needs the token's owner; a token sent without one belongs to the EMSP.
        for (field, owner) in [("country_code", &peer.country_code), ("party_id", &peer.party_id)] {
            if !fields.contains_key(field)
                && let Some(owner) = owner
            {
                fields.insert(field.to_owned(), Value::String(owner.clone()));
            }
        }
    }
    let location = inner.location(&location_id).cloned().unwrap_or(Value::Null);
    let evse = inner.evse(&location_id, &evse_uid).cloned().unwrap_or(Value::Null);
    let status = str_field(&evse, "status").map(str::to_owned);
    let reserved_here = inner.reservations.values().any(|(l, e)| *l == location_id && *e == evse_uid);
    if !token_is_valid(&inner.tokens, &token) {
        return Err("REJECTED");
    }
    let free = status.as_deref() == Some("AVAILABLE") || (status.as_deref() == Some("RESERVED") && reserved_here);
    if !free {
        return Err(blocked_result(status.as_deref()));
    }
    let connectors = evse.get("connectors").and_then(Value::as_array).cloned().unwrap_or_default();
    let Some(connector) = connectors.iter().find(|c| str_field(c, "id") == Some(connector_id.as_str())) else {
        return Err("FAILED");
    };
    let is_dc = str_field(connector, "power_type") == Some("DC");
    let power_kw = connector_kw(connector).min(if is_dc { 150.0 } else { 11.0 });
    let tariff = tariff_id(connector)
        .and_then(|id| inner.tariffs.iter().find(|t| str_field(t, "id") == Some(id.as_str())).cloned());
    let currency = tariff.as_ref().and_then(|t| str_field(t, "currency")).unwrap_or("EUR").to_owned();
    let id = uuid::Uuid::new_v4().to_string();
    inner.reservations.retain(|_, (l, e)| !(*l == location_id && *e == evse_uid));
    inner.sessions.insert(
        id.clone(),
        ChargingSession {
            id: id.clone(),
            location_id,
            evse_uid: evse_uid.clone(),
            connector_id: connector_id.clone(),
            token,
            authorization_reference: reference,
            auth_method,
            start: now,
            elapsed: Duration::zero(),
            kwh: 0.0,
            power_kw,
            periods: Vec::new(),
            currency,
            tariff,
            completed: false,
            stop_requested: false,
            last_updated: now,
            location: single_evse_location(&location, &evse_uid, &connector_id),
            stop: Arc::new(Notify::new()),
        },
    );
    Ok(id)
}

/// A token the EMSP pushed with `valid: false` is refused, as a real CPO would.
fn token_is_valid(tokens: &std::collections::BTreeMap<(String, String, String, String), Value>, token: &Value) -> bool {
    let uid = str_field(token, "uid");
    !tokens
        .values()
        .any(|stored| str_field(stored, "uid") == uid && stored.get("valid").and_then(Value::as_bool) == Some(false))
}

/// The location with only the session's EVSE and connector: what a 2.1.1 Session carries.
fn single_evse_location(location: &Value, evse_uid: &str, connector_id: &str) -> Value {
    let mut location = location.clone();
    if let Some(evses) = location.get_mut("evses").and_then(Value::as_array_mut) {
        evses.retain(|e| str_field(e, "uid") == Some(evse_uid));
        for evse in evses.iter_mut() {
            if let Some(connectors) = evse.get_mut("connectors").and_then(Value::as_array_mut) {
                connectors.retain(|c| str_field(c, "id") == Some(connector_id));
            }
        }
    }
    location
}

pub(crate) async fn run_session(state: Arc<SimState>, session_id: String) {
    let body = {
        let inner = state.inner.lock();
        inner.sessions.get(&session_id).map(|s| session_json(&state, s))
    };
    let Some(body) = body else { return };
    let (country_code, party_id) = &state.party;
    let segments = [country_code.as_str(), party_id.as_str(), session_id.as_str()];
    // Delivery failures are logged by `push`; the session carries on, as a charger would, and
    // the EMSP can catch up with GET /sessions.
    let _ = push(&state, "sessions", Method::PUT, &segments, &body).await;
    let real_start = Instant::now();
    let mut last_tick = Instant::now();
    loop {
        let stop = state.inner.lock().sessions.get(&session_id).map(|s| s.stop.clone());
        let Some(stop) = stop else { return };
        tokio::select! {
            _ = tokio::time::sleep(state.charging.tick) => {}
            _ = stop.notified() => {}
        }
        let real = last_tick.elapsed();
        last_tick = Instant::now();
        let finish = real_start.elapsed() >= state.charging.max_duration;
        let (patch, done) = {
            let mut inner = state.inner.lock();
            let Some(session) = inner.sessions.get_mut(&session_id) else { return };
            add_period(session, real.as_secs_f64(), state.charging.time_scale);
            let done = finish || session.stop_requested;
            session.completed = done;
            (patch_json(&state, session, done), done)
        };
        let _ = push(&state, "sessions", Method::PATCH, &segments, &patch).await;
        if done {
            break;
        }
    }
    finish_session(&state, &session_id).await;
}

/// Appends the period since the last tick: real start and duration, energy at the session's power
/// sped up by `energy_scale` (so a demo shows kWh growing without timestamps in the future).
fn add_period(session: &mut ChargingSession, real_seconds: f64, energy_scale: f64) {
    let hours = real_seconds / 3600.0;
    let kwh = round(session.power_kw * hours * energy_scale, 3);
    let start = session.start + session.elapsed;
    session.elapsed += Duration::milliseconds((real_seconds * 1000.0) as i64);
    session.kwh = round(session.kwh + kwh, 3);
    session.last_updated = Utc::now();
    session.periods.push(Period { start, kwh, hours });
}

fn round(value: f64, decimals: i32) -> f64 {
    let factor = 10f64.powi(decimals);
    (value * factor).round() / factor
}

/// `(price per kWh, flat fee, vat %)` of a tariff: its first ENERGY and FLAT components.
fn tariff_prices(tariff: Option<&Value>) -> (f64, f64, f64) {
    let mut energy = None;
    let mut flat = 0.0;
    let mut vat = 0.0;
    let elements = tariff.and_then(|t| t.get("elements")).and_then(Value::as_array).cloned().unwrap_or_default();
    for element in &elements {
        let components = element.get("price_components").and_then(Value::as_array).cloned().unwrap_or_default();
        for component in &components {
            let price = component.get("price").and_then(Value::as_f64).unwrap_or(0.0);
            match str_field(component, "type") {
                Some("ENERGY") if energy.is_none() => {
                    energy = Some(price);
                    vat = component.get("vat").and_then(Value::as_f64).unwrap_or(0.0);
                }
                Some("FLAT") if flat == 0.0 => flat = price,
                _ => {}
            }
        }
    }
    (energy.unwrap_or(0.0), flat, vat)
}

/// `(energy cost, fixed cost, vat %)` so far.
fn costs(session: &ChargingSession) -> (f64, f64, f64) {
    let (per_kwh, flat, vat) = tariff_prices(session.tariff.as_ref());
    (round(session.kwh * per_kwh, 2), flat, vat)
}

fn price(excl_vat: f64, vat: f64) -> Price {
    Price { excl_vat: round(excl_vat, 2), incl_vat: round(excl_vat * (1.0 + vat / 100.0), 2) }
}

fn periods_json(session: &ChargingSession, periods: &[Period]) -> Vec<ChargingPeriod> {
    let tariff_id = session.tariff.as_ref().and_then(|t| str_field(t, "id")).map(str::to_owned);
    periods
        .iter()
        .map(|p| ChargingPeriod {
            start_date_time: format_datetime(p.start),
            dimensions: vec![
                Dimension { kind: "ENERGY", volume: p.kwh },
                Dimension { kind: "TIME", volume: round(p.hours, 4) },
            ],
            tariff_id: tariff_id.clone(),
        })
        .collect()
}

fn cdr_token(token: &Value) -> CdrToken {
    let text = |field: &str| str_field(token, field).map(str::to_owned);
    let uid = text("uid").unwrap_or_default();
    CdrToken {
        country_code: text("country_code"),
        party_id: text("party_id"),
        kind: text("type").unwrap_or_else(|| "RFID".to_owned()),
        contract_id: text("contract_id").or_else(|| text("auth_id")).unwrap_or_else(|| uid.clone()),
        uid,
    }
}

/// 2.1.1 knows only AUTH_REQUEST and WHITELIST; a remote start counts as WHITELIST.
fn auth_method_211(session: &ChargingSession) -> &'static str {
    if session.auth_method == "AUTH_REQUEST" { "AUTH_REQUEST" } else { "WHITELIST" }
}

fn status_of(session: &ChargingSession) -> &'static str {
    if session.completed { "COMPLETED" } else { "ACTIVE" }
}

fn end_of(session: &ChargingSession) -> Option<String> {
    session.completed.then(|| format_datetime(session.start + session.elapsed))
}

/// The whole Session object in the simulator's OCPI version.
pub fn session_json(state: &SimState, session: &ChargingSession) -> Value {
    let (energy_cost, fixed, vat) = costs(session);
    let total = energy_cost + fixed;
    let result = match state.version {
        SimVersion::V2_2_1 => serde_json::to_value(Session221 {
            country_code: state.party.0.clone(),
            party_id: state.party.1.clone(),
            id: session.id.clone(),
            start_date_time: format_datetime(session.start),
            end_date_time: end_of(session),
            kwh: session.kwh,
            cdr_token: cdr_token(&session.token),
            auth_method: session.auth_method,
            authorization_reference: session.authorization_reference.clone(),
            location_id: session.location_id.clone(),
            evse_uid: session.evse_uid.clone(),
            connector_id: session.connector_id.clone(),
            currency: session.currency.clone(),
            charging_periods: periods_json(session, &session.periods),
            total_cost: price(total, vat),
            status: status_of(session),
            last_updated: format_datetime(session.last_updated),
        }),
        SimVersion::V2_1_1 => serde_json::to_value(Session211 {
            id: session.id.clone(),
            start_datetime: format_datetime(session.start),
            end_datetime: end_of(session),
            kwh: session.kwh,
            auth_id: cdr_token(&session.token).contract_id,
            auth_method: auth_method_211(session),
            location: session.location.clone(),
            currency: session.currency.clone(),
            charging_periods: periods_json(session, &session.periods),
            total_cost: round(total, 2),
            status: status_of(session),
            last_updated: format_datetime(session.last_updated),
        }),
    };
    result.unwrap_or(Value::Null)
}

fn patch_json(state: &SimState, session: &ChargingSession, done: bool) -> Value {
    let (energy_cost, fixed, vat) = costs(session);
    let total = energy_cost + fixed;
    let v221 = state.version == SimVersion::V2_2_1;
    let end = if done { end_of(session) } else { None };
    let patch = SessionPatch {
        kwh: session.kwh,
        charging_periods: periods_json(session, &session.periods[session.periods.len().saturating_sub(1)..]),
        total_cost: if v221 {
            serde_json::to_value(price(total, vat)).unwrap_or(Value::Null)
        } else {
            Value::from(round(total, 2))
        },
        status: done.then(|| status_of(session)),
        end_date_time: if v221 { end.clone() } else { None },
        end_datetime: if v221 { None } else { end },
        last_updated: format_datetime(session.last_updated),
    };
    serde_json::to_value(patch).unwrap_or(Value::Null)
}

/// A CDR id within OCPI's 39 characters (`CDR-` and the session's UUID without dashes).
fn cdr_id(session_id: &str) -> String {
    format!("CDR-{}", session_id.replace('-', ""))
}

fn cdr_json(state: &SimState, session: &ChargingSession) -> Value {
    let (energy_cost, fixed, vat) = costs(session);
    let total = energy_cost + fixed;
    let end = format_datetime(session.start + session.elapsed);
    let total_time = round(session.elapsed.num_milliseconds() as f64 / 3_600_000.0, 4);
    let tariffs: Vec<Value> = session.tariff.iter().cloned().collect();
    let result = match state.version {
        SimVersion::V2_2_1 => {
            let location = &session.location;
            let evse = location.get("evses").and_then(|e| e.get(0)).cloned().unwrap_or(Value::Null);
            let connector = evse.get("connectors").and_then(|c| c.get(0)).cloned().unwrap_or(Value::Null);
            let text = |v: &Value, field: &str| str_field(v, field).unwrap_or_default().to_owned();
            serde_json::to_value(Cdr221 {
                country_code: state.party.0.clone(),
                party_id: state.party.1.clone(),
                id: cdr_id(&session.id),
                start_date_time: format_datetime(session.start),
                end_date_time: end,
                session_id: session.id.clone(),
                cdr_token: cdr_token(&session.token),
                auth_method: session.auth_method,
                authorization_reference: session.authorization_reference.clone(),
                cdr_location: CdrLocation {
                    id: session.location_id.clone(),
                    name: str_field(location, "name").map(str::to_owned),
                    address: text(location, "address"),
                    city: text(location, "city"),
                    postal_code: str_field(location, "postal_code").map(str::to_owned),
                    country: text(location, "country"),
                    coordinates: location.get("coordinates").cloned().unwrap_or(Value::Null),
                    evse_uid: session.evse_uid.clone(),
                    evse_id: text(&evse, "evse_id"),
                    connector_id: session.connector_id.clone(),
                    connector_standard: text(&connector, "standard"),
                    connector_format: text(&connector, "format"),
                    connector_power_type: text(&connector, "power_type"),
                },
                currency: session.currency.clone(),
                tariffs,
                charging_periods: periods_json(session, &session.periods),
                total_cost: price(total, vat),
                total_fixed_cost: (fixed > 0.0).then(|| price(fixed, vat)),
                total_energy: session.kwh,
                total_energy_cost: price(energy_cost, vat),
                total_time,
                last_updated: crate::envelope::now(),
            })
        }
        SimVersion::V2_1_1 => serde_json::to_value(Cdr211 {
            id: cdr_id(&session.id),
            start_date_time: format_datetime(session.start),
            stop_date_time: end,
            auth_id: cdr_token(&session.token).contract_id,
            auth_method: auth_method_211(session),
            location: session.location.clone(),
            currency: session.currency.clone(),
            tariffs,
            charging_periods: periods_json(session, &session.periods),
            total_cost: round(total, 2),
            total_energy: session.kwh,
            total_time,
            last_updated: crate::envelope::now(),
        }),
    };
    result.unwrap_or(Value::Null)
}

async fn finish_session(state: &SimState, session_id: &str) {
    let done = {
        let mut inner = state.inner.lock();
        let Some(session) = inner.sessions.get(session_id) else { return };
        let cdr = cdr_json(state, session);
        let place = (session.location_id.clone(), session.evse_uid.clone());
        inner.cdrs.push(cdr.clone());
        (cdr, place)
    };
    let (cdr, (location_id, evse_uid)) = done;
    match push(state, "cdrs", Method::POST, &[], &cdr).await {
        Ok(_) => tracing::info!(%session_id, "session completed; cdr sent"),
        Err(error) => tracing::warn!(%error, %session_id, "cdr not delivered"),
    }
    set_and_push_status(state, &location_id, &evse_uid, "AVAILABLE").await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn energy_and_flat_components_price_the_session() {
        let tariff: Value = serde_json::from_str(
            r#"{"id":"DC-EUR","currency":"EUR","elements":[{"price_components":[
                {"type":"FLAT","price":0.5,"vat":21.0,"step_size":1},
                {"type":"ENERGY","price":0.59,"vat":21.0,"step_size":1}]}]}"#,
        )
        .unwrap();
        assert_eq!(tariff_prices(Some(&tariff)), (0.59, 0.5, 21.0));
        assert_eq!(tariff_prices(None), (0.0, 0.0, 0.0));
        let p = price(10.0, 21.0);
        assert_eq!((p.excl_vat, p.incl_vat), (10.0, 12.1));
    }

    #[test]
    fn connector_power_from_either_version() {
        let v221: Value = serde_json::from_str(r#"{"max_electric_power":22080}"#).unwrap();
        let v211: Value = serde_json::from_str(r#"{"voltage":230,"amperage":16,"power_type":"AC_3_PHASE"}"#).unwrap();
        assert!((connector_kw(&v221) - 22.08).abs() < 1e-9);
        assert!((connector_kw(&v211) - 11.04).abs() < 1e-9);
    }
}
