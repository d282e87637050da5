//! Sessions and CDRs from CPOs: the receiver interfaces (Session PUT/PATCH/GET, CDR POST/GET), the
//! command results posted to our `response_url`s, and pulls of the CPO's sessions and CDRs.
//!
//! - A Session is read by the same wire types as everywhere; a PATCH is applied to the stored
//!   session in 2.2.1 form (2.1.1 field names translated), its `charging_periods` appended, and the
//!   result read again. A session older than the stored one is not written.
//! - A session or CDR is matched to the driver's session by our `authorization_reference`, else the
//!   CPO session already linked, else the token (see [`emsp_store::Store::match_charging`]); what
//!   it says is applied to that session's state machine.
//! - A CDR is priced with our tariff engine (the CDR's own tariff, else the tariff its charging
//!   periods name, from the store) and a difference from the CPO's totals is flagged for ops. Its
//!   body is kept exactly as received. A second POST of a known CDR changes nothing and gets the
//!   same answer (idempotent).

use actix_web::http::StatusCode as HttpStatus;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use emsp_domain::{Cdr, CdrReport, ChargingEvent, PartyId, Session, SessionReport, Tariff};
use emsp_ocpi::{ImportOptions, Notes, OcpiVersion, StatusCode, v2_1_1, v2_2_1};
use emsp_store::{NewCdr, Partner, PriceCheck, Store, StoreError, WriteOutcome, object_key};
use serde_json::{Map, Value};

use crate::error::{OcpiError, RoamingError};
use crate::receivers::{blocking, owner, version};
use crate::transport::{OcpiRequest, Roaming};

/// Path of a session: version, country code, party id, session id.
pub type SessionPath = (String, String, String, String);
/// Path of a command result: version, command, our command id.
pub type CommandPath = (String, String, String);

/// `POST /ocpi/{version}/commands/{command}/{id}`.
pub async fn post_command_result(
    roaming: web::Data<Roaming>,
    req: OcpiRequest,
    path: web::Path<CommandPath>,
    body: web::Json<Value>,
) -> Result<HttpResponse, OcpiError> {
    req.require_registered()?;
    let (v, command, id) = path.into_inner();
    version(&v)?;
    crate::charging::receive_result(&roaming, &req.partner.id, &command, &id, &body).await?;
    Ok(req.ok_empty())
}

fn unknown_session(key: &str) -> OcpiError {
    OcpiError::new(HttpStatus::NOT_FOUND, StatusCode::CLIENT_ERROR, format!("unknown session {key}"))
}

/// Reads one session in `version`; the URL's party is the fallback owner (2.1.1 names none).
fn read_session(body: &Value, party: &PartyId, version: OcpiVersion) -> Result<Session, OcpiError> {
    let mut notes = Notes::new();
    let session = if version.is_2_1_1() {
        let wire: v2_1_1::sessions::Session = serde_json::from_value(body.clone())
            .map_err(|e| OcpiError::invalid(format!("not a 2.1.1 Session: {e}")))?;
        v2_1_1::sessions::to_domain(&wire, Some(party), &mut notes)
    } else {
        let wire: v2_2_1::sessions::Session = serde_json::from_value(body.clone())
            .map_err(|e| OcpiError::invalid(format!("not a 2.2.1 Session: {e}")))?;
        v2_2_1::sessions::to_domain(&wire, Some(party), &mut notes)
    }
    .map_err(|e| OcpiError::invalid(format!("{}: {}", e.path, e.reason)))?;
    for note in &notes.items {
        tracing::warn!(path = %note.path, message = %note.message, "tolerated a deviation in a pushed session");
    }
    Ok(session)
}

/// Stores a session, links it to the driver's session and applies it there.
pub async fn store_session(
    store: &Store,
    partner_id: &str,
    version: OcpiVersion,
    session: Session,
) -> Result<WriteOutcome, StoreError> {
    let store = store.clone();
    let partner_id = partner_id.to_owned();
    let outcome = tokio::task::spawn_blocking(move || {
        let key = object_key(&session.party, session.id.as_str());
        let token = (session.cdr_token.uid.as_str(), session.cdr_token.contract_id.as_str());
        let matched =
            match store.match_charging(&partner_id, session.authorization_reference.as_deref(), Some(&key), token)? {
                Some(found) => Some(found),
                None => adopt_session(&store, &partner_id, &session, &key)?,
            };
        let charging_id = matched.as_ref().map(|m| m.id.clone());
        let outcome = store.upsert_cpo_session(&session, &partner_id, version.as_str(), charging_id.as_deref())?;
        if outcome != WriteOutcome::Unchanged
            && let Some(charging_id) = charging_id
        {
            let report = SessionReport {
                session_key: key,
                status: session.status.clone(),
                kwh: session.kwh,
                cost: session.total_cost.clone(),
                currency: session.currency.clone(),
                start: session.start_date_time,
                end: session.end_date_time,
                last_updated: session.last_updated,
            };
            store.apply_charging_event(&charging_id, &ChargingEvent::SessionReport(report))?;
        } else if matched.is_none() {
            tracing::info!(session = %key, partner = %partner_id, "session of no driver of ours (swipe or unknown)");
        }
        Ok::<_, StoreError>(outcome)
    })
    .await
    .map_err(|e| StoreError::Unavailable(e.to_string()))??;
    Ok(outcome)
}

/// A session we did not start from the app (an RFID swipe, a real-time authorization) with a
/// token of one of our drivers: it becomes that driver's session too, so it shows in the app.
fn adopt_session(
    store: &Store,
    partner_id: &str,
    session: &Session,
    key: &str,
) -> Result<Option<emsp_store::ChargingRecord>, StoreError> {
    let token = match store.get_party_token(&session.cdr_token.party, session.cdr_token.uid.as_str())? {
        Some(token) => Some(token),
        None => store.get_token(session.cdr_token.uid.as_str())?,
    };
    let Some(user_id) = token.as_ref().and_then(|t| t.user_id.clone()) else { return Ok(None) };
    let id = uuid::Uuid::new_v4().to_string();
    // The CPO's reference when it has one (a real-time authorization of ours), else the session.
    let reference = match &session.authorization_reference {
        Some(reference) if store.get_authorization(reference)?.is_some() => reference.clone(),
        _ => format!("session:{key}"),
    };
    let location_key = object_key(&session.party, session.location_id.as_str());
    let created = store.create_charging(&emsp_store::NewCharging {
        id: &id,
        user_id: &user_id,
        partner_id,
        location_key: &location_key,
        evse_uid: session.evse_uid.as_str(),
        connector_id: Some(session.connector_id.as_str()),
        token_uid: session.cdr_token.uid.as_str(),
        contract_id: &session.cdr_token.contract_id,
        authorization_reference: &reference,
    });
    match created {
        Ok(record) => {
            tracing::info!(session = %key, charging = %record.id, "session of a driver adopted");
            Ok(Some(record))
        }
        // Another replica adopted it at the same moment: use theirs.
        Err(_) => store.match_charging(partner_id, Some(&reference), Some(key), ("", "")),
    }
}

fn check_identity(session: &Session, party: &PartyId, id: &str) -> Result<(), OcpiError> {
    if &session.party != party {
        return Err(OcpiError::invalid(format!("the session belongs to {}, the URL names {party}", session.party)));
    }
    if session.id.as_str() != id {
        return Err(OcpiError::invalid(format!("the session's id {} differs from the URL's {id}", session.id)));
    }
    Ok(())
}

/// `PUT /ocpi/{version}/sessions/{cc}/{pid}/{session_id}`.
pub async fn put_session(
    roaming: web::Data<Roaming>,
    req: OcpiRequest,
    path: web::Path<SessionPath>,
    body: web::Json<Value>,
) -> Result<HttpResponse, OcpiError> {
    let (v, cc, pid, id) = path.into_inner();
    let version = version(&v)?;
    let party = owner(&req, &cc, &pid)?;
    let session = read_session(&body, &party, version)?;
    check_identity(&session, &party, &id)?;
    store_session(&roaming.store, &req.partner.id, version, session).await?;
    Ok(req.ok_empty())
}

/// 2.1.1 names of session fields, as 2.2.1 spells them.
fn patch_in_2_2_1(mut patch: Map<String, Value>, version: OcpiVersion) -> Map<String, Value> {
    if version.is_2_1_1() {
        for (old, new) in [("start_datetime", "start_date_time"), ("end_datetime", "end_date_time")] {
            if let Some(value) = patch.remove(old) {
                patch.insert(new.to_owned(), value);
            }
        }
        if let Some(cost) = patch.get("total_cost").cloned()
            && cost.is_number()
        {
            patch.insert("total_cost".into(), serde_json::json!({ "excl_vat": cost }));
        }
    }
    patch
}

/// `PATCH /ocpi/{version}/sessions/{cc}/{pid}/{session_id}`: changed fields; `charging_periods`
/// are appended to the known ones.
pub async fn patch_session(
    roaming: web::Data<Roaming>,
    req: OcpiRequest,
    path: web::Path<SessionPath>,
    body: web::Json<Value>,
) -> Result<HttpResponse, OcpiError> {
    let (v, cc, pid, id) = path.into_inner();
    let version = version(&v)?;
    let party = owner(&req, &cc, &pid)?;
    let Value::Object(patch) = body.into_inner() else {
        return Err(OcpiError::invalid("the body must be a JSON object"));
    };
    if !patch.contains_key("last_updated") {
        return Err(OcpiError::invalid("a PATCH must contain last_updated"));
    }
    let key = object_key(&party, &id);
    let store = roaming.store.clone();
    let lookup = key.clone();
    let stored = blocking(move || store.get_cpo_session(&lookup)).await?.ok_or_else(|| unknown_session(&key))?;
    if stored.partner_id != req.partner.id {
        return Err(unknown_session(&key));
    }
    let mut wire =
        serde_json::to_value(v2_2_1::sessions::from_domain(&stored.session)).map_err(|e| OcpiError::internal(&e))?;
    let mut patch = patch_in_2_2_1(patch, version);
    let new_periods = match patch.remove("charging_periods") {
        Some(Value::Array(periods)) => periods,
        Some(_) => return Err(OcpiError::invalid("charging_periods must be a list")),
        None => Vec::new(),
    };
    if let Value::Object(object) = &mut wire {
        for (field, value) in patch {
            object.insert(field, value);
        }
        let periods = object.entry("charging_periods").or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(periods) = periods {
            periods.extend(new_periods);
        }
    }
    let session = read_session(&wire, &party, OcpiVersion::V2_2_1)?;
    check_identity(&session, &party, &id)?;
    store_session(&roaming.store, &req.partner.id, version, session).await?;
    Ok(req.ok_empty())
}

/// `GET /ocpi/{version}/sessions/{cc}/{pid}/{session_id}`: the session as we hold it (2.2.1 form;
/// a 2.1.1 partner is answered with the fields both versions share under their 2.1.1 names).
pub async fn get_session(
    roaming: web::Data<Roaming>,
    req: OcpiRequest,
    path: web::Path<SessionPath>,
) -> Result<HttpResponse, OcpiError> {
    let (v, cc, pid, id) = path.into_inner();
    let version = version(&v)?;
    let party = owner(&req, &cc, &pid)?;
    let key = object_key(&party, &id);
    let store = roaming.store.clone();
    let lookup = key.clone();
    let stored = blocking(move || store.get_cpo_session(&lookup)).await?.ok_or_else(|| unknown_session(&key))?;
    if stored.partner_id != req.partner.id {
        return Err(unknown_session(&key));
    }
    let mut wire =
        serde_json::to_value(v2_2_1::sessions::from_domain(&stored.session)).map_err(|e| OcpiError::internal(&e))?;
    if version.is_2_1_1()
        && let Value::Object(object) = &mut wire
    {
        for (new, old) in [("start_date_time", "start_datetime"), ("end_date_time", "end_datetime")] {
            if let Some(value) = object.remove(new) {
                object.insert(old.to_owned(), value);
            }
        }
        object.insert("auth_id".into(), Value::from(stored.session.cdr_token.contract_id.clone()));
        if let Some(excl) = object.get("total_cost").and_then(|c| c.get("excl_vat")).cloned() {
            object.insert("total_cost".into(), excl);
        }
        for field in ["country_code", "party_id", "cdr_token", "authorization_reference"] {
            object.remove(field);
        }
    }
    Ok(req.ok(wire))
}

/// The CPO party behind a partner (for 2.1.1 objects, which name none).
fn cpo_party(req: &OcpiRequest) -> Option<PartyId> {
    req.parties
        .iter()
        .find(|p| p.role.eq_ignore_ascii_case("CPO"))
        .and_then(|p| PartyId::parse(&format!("{}{}", p.country_code, p.party_id)).ok())
}

/// Our price of a CDR beside the CPO's: the CDR's own tariff, else the one its periods name.
fn price_check(
    store: &Store,
    cdr: &Cdr,
) -> Result<(Option<emsp_domain::Price>, PriceCheck, Option<String>), StoreError> {
    let tariff: Option<Tariff> = match cdr.tariffs.first() {
        Some(tariff) => Some(tariff.clone()),
        None => {
            let named = cdr.charging_periods.iter().find_map(|p| p.tariff_id.clone());
            match named {
                Some(id) => store.get_tariff(&object_key(&cdr.party, &id))?,
                None => None,
            }
        }
    };
    let Some(tariff) = tariff else {
        return Ok((None, PriceCheck::Unchecked, Some("no tariff to price the CDR with".into())));
    };
    let location_id = cdr.cdr_location.get("id").and_then(Value::as_str).unwrap_or_default();
    let zone = store
        .get_location(&object_key(&cdr.party, location_id))?
        .and_then(|l| l.time_zone)
        .and_then(|z| z.parse::<chrono_tz::Tz>().ok())
        .unwrap_or(chrono_tz::UTC);
    match emsp_domain::check_cdr(&tariff, cdr, zone) {
        Ok(check) => {
            let ours = check.total_cost.ours.clone();
            let note = (!check.matches).then(|| {
                format!(
                    "our total {} excl. VAT, the CPO's {} (tariff {})",
                    ours.excl_vat, cdr.total_cost.excl_vat, tariff.id
                )
            });
            Ok((Some(ours), if check.matches { PriceCheck::Match } else { PriceCheck::Mismatch }, note))
        }
        Err(error) => Ok((None, PriceCheck::Unchecked, Some(format!("cannot price: {error}")))),
    }
}

/// Stores a CDR received or pulled: matched, priced, applied to the driver's session. `false` for
/// a CDR already known.
pub async fn store_cdr(
    store: &Store,
    partner_id: &str,
    version: OcpiVersion,
    cdr: Cdr,
    raw: String,
) -> Result<bool, StoreError> {
    let store = store.clone();
    let partner_id = partner_id.to_owned();
    tokio::task::spawn_blocking(move || {
        let key = object_key(&cdr.party, cdr.id.as_str());
        if store.get_cdr(&key)?.is_some() {
            return Ok(false);
        }
        let session_key = cdr.session_id.as_ref().map(|id| object_key(&cdr.party, id.as_str()));
        let token = (cdr.cdr_token.uid.as_str(), cdr.cdr_token.contract_id.as_str());
        let matched = match store.match_charging(
            &partner_id,
            cdr.authorization_reference.as_deref(),
            session_key.as_deref(),
            token,
        )? {
            Some(found) => Some(found),
            // No session named (2.1.1) or an unknown one: the charger and the token decide.
            None => {
                let location_id = cdr.cdr_location.get("id").and_then(Value::as_str).unwrap_or_default();
                store.match_charging_without_cdr(&partner_id, &object_key(&cdr.party, location_id), token)?
            }
        };
        let (ours, check, note) = price_check(&store, &cdr)?;
        if check == PriceCheck::Mismatch {
            tracing::warn!(cdr = %key, partner = %partner_id, note = note.as_deref().unwrap_or_default(), "cdr price differs from ours");
        }
        let created = store.insert_cdr(&NewCdr {
            cdr: &cdr,
            partner_id: &partner_id,
            version: version.as_str(),
            session_key: session_key.as_deref(),
            charging_id: matched.as_ref().map(|m| m.id.as_str()),
            raw: &raw,
            our_cost: ours.as_ref(),
            price_check: check,
            price_note: note.as_deref(),
        })?;
        match (&matched, created) {
            (Some(charging), true) => {
                let report =
                    CdrReport {
                    cdr_key: key,
                    kwh: cdr.total_energy,
                    cost: cdr.total_cost.clone(),
                    currency: cdr.currency.clone(),
                    end: cdr.end_date_time,
                };
                store.apply_charging_event(&charging.id, &ChargingEvent::Cdr(report))?;
            }
            (None, true) => tracing::warn!(cdr = %key, partner = %partner_id, "cdr for no session of ours"),
            _ => {}
        }
        Ok(created)
    })
    .await
    .map_err(|e| StoreError::Unavailable(e.to_string()))?
}

fn cdr_url(roaming: &Roaming, version: OcpiVersion, cdr: &Cdr) -> String {
    format!(
        "{}/cdrs/{}/{}/{}",
        roaming.config.version_url(version.as_str()),
        cdr.party.country_code,
        cdr.party.party_id,
        cdr.id
    )
}

/// `POST /ocpi/{version}/cdrs`: a new CDR, answered with its URL in `Location`.
pub async fn post_cdr(
    roaming: web::Data<Roaming>,
    req: OcpiRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, OcpiError> {
    req.require_registered()?;
    let version = version(&path.into_inner())?;
    let raw = String::from_utf8(body.to_vec()).map_err(|_| OcpiError::invalid("the body is not UTF-8"))?;
    let options = ImportOptions { default_party: cpo_party(&req), version: Some(version) };
    let mut feed = emsp_ocpi::parse_cdrs(raw.as_bytes(), &options).map_err(|e| OcpiError::invalid(e.to_string()))?;
    if let Some(skipped) = feed.skipped.first() {
        return Err(OcpiError::invalid(format!("{}: {}", skipped.path.trim_start_matches("[0]"), skipped.reason)));
    }
    if feed.items.len() != 1 {
        return Err(OcpiError::invalid("the body must be one CDR object"));
    }
    let cdr = feed.items.pop().ok_or_else(|| OcpiError::invalid("no CDR in the body"))?;
    owner(&req, cdr.party.country_code.as_str(), cdr.party.party_id.as_str())?;
    let location = cdr_url(&roaming, version, &cdr);
    let created = store_cdr(&roaming.store, &req.partner.id, version, cdr, raw).await?;
    tracing::info!(%location, created, "cdr received");
    let mut response = req.ok_empty();
    if let Ok(value) = header::HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// `GET /ocpi/{version}/cdrs/{cc}/{pid}/{cdr_id}`: a CDR as it was received (the `Location` of its
/// POST), to the partner that sent it.
pub async fn get_cdr(
    roaming: web::Data<Roaming>,
    req: OcpiRequest,
    path: web::Path<SessionPath>,
) -> Result<HttpResponse, OcpiError> {
    let (v, cc, pid, id) = path.into_inner();
    version(&v)?;
    let party = owner(&req, &cc, &pid)?;
    let key = object_key(&party, &id);
    let store = roaming.store.clone();
    let lookup = key.clone();
    let missing = || OcpiError::new(HttpStatus::NOT_FOUND, StatusCode::CLIENT_ERROR, format!("unknown CDR {key}"));
    let stored = blocking(move || store.get_cdr(&lookup)).await?.ok_or_else(missing)?;
    if stored.partner_id != req.partner.id {
        return Err(missing());
    }
    let raw: Value = serde_json::from_str(&stored.raw).map_err(|e| OcpiError::internal(&e))?;
    // A CDR POSTed inside an envelope or list by a lenient partner is answered as the one object.
    let object = match raw {
        Value::Object(mut map) if map.contains_key("data") && map.contains_key("status_code") => {
            map.remove("data").unwrap_or(Value::Null)
        }
        Value::Array(mut items) if items.len() == 1 => items.remove(0),
        other => other,
    };
    Ok(req.ok(object))
}

/// What a pull of sessions or CDRs did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChargingPullReport {
    pub pages: usize,
    pub received: usize,
    pub stored: usize,
    pub skipped: usize,
}

/// The URL of `module` on a partner that serves it as Sender (2.2.1 role SENDER, or no role: 2.1.1).
pub fn sender_endpoint(partner: &Partner, module: &str) -> Option<String> {
    partner
        .endpoints
        .iter()
        .find(|e| e.identifier == module && e.role.as_deref().is_none_or(|r| r.eq_ignore_ascii_case("SENDER")))
        .map(|e| e.url.clone())
}

/// Pulls the partner's sessions (`module` = `sessions`) or CDRs (`cdrs`) from its Sender interface,
/// following `Link` headers; each object goes through the same path as a push.
pub async fn pull_charging(
    roaming: &Roaming,
    partner_id: &str,
    module: &'static str,
    date_from: chrono::DateTime<chrono::Utc>,
) -> Result<ChargingPullReport, RoamingError> {
    let store = roaming.store.clone();
    let id = partner_id.to_owned();
    let (partner, token, parties) = tokio::task::spawn_blocking(move || {
        Ok::<_, StoreError>((store.get_partner(&id)?, store.outgoing_token(&id)?, store.partner_parties(&id)?))
    })
    .await
    .map_err(|e| RoamingError::Unreachable { url: String::new(), reason: e.to_string() })??;
    let partner = partner.ok_or_else(|| RoamingError::MissingEndpoints(format!("no partner {partner_id}")))?;
    let token = token.ok_or_else(|| RoamingError::MissingEndpoints(format!("partner {partner_id} has no token")))?;
    let version = partner.version.as_deref().and_then(|v| OcpiVersion::parse(v).ok()).unwrap_or(OcpiVersion::V2_2_1);
    let endpoint = sender_endpoint(&partner, module)
        .ok_or_else(|| RoamingError::MissingEndpoints(format!("{module} (SENDER)")))?;
    let default_party = parties
        .iter()
        .find(|p| p.role.eq_ignore_ascii_case("CPO"))
        .and_then(|p| PartyId::parse(&format!("{}{}", p.country_code, p.party_id)).ok());
    let encoding = crate::client::TokenEncoding::choose(partner.token_encoding.as_deref(), Some(version));
    let target = crate::client::Target { token: &token, encoding, to: None };
    let from = date_from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true).replace('+', "%2B");
    let separator = if endpoint.contains('?') { '&' } else { '?' };
    let mut url = format!("{endpoint}{separator}date_from={from}");
    let mut seen = std::collections::HashSet::new();
    let mut report = ChargingPullReport::default();
    loop {
        seen.insert(url.clone());
        let page = roaming.client.get::<Value>(&url, &target).await?;
        report.pages += 1;
        let items = page.data.as_array().cloned().unwrap_or_default();
        report.received += items.len();
        for item in items {
            let raw = item.to_string();
            let stored = match module {
                "sessions" => {
                    let party = default_party.clone().or_else(|| {
                        let cc = item.get("country_code")?.as_str()?;
                        let pid = item.get("party_id")?.as_str()?;
                        PartyId::parse(&format!("{cc}{pid}")).ok()
                    });
                    let Some(party) = party else {
                        report.skipped += 1;
                        continue;
                    };
                    match read_session(&item, &party, version) {
                        Ok(session) => {
                            store_session(&roaming.store, &partner.id, version, session).await?
                                != WriteOutcome::Unchanged
                        }
                        Err(error) => {
                            tracing::warn!(partner = %partner.id, %error, "pulled session skipped");
                            report.skipped += 1;
                            continue;
                        }
                    }
                }
                _ => {
                    let options = ImportOptions { default_party: default_party.clone(), version: Some(version) };
                    let feed = emsp_ocpi::parse_cdrs(raw.as_bytes(), &options)
                        .map_err(|e| RoamingError::Malformed { url: url.clone(), reason: e.to_string() })?;
                    let Some(cdr) = feed.items.into_iter().next() else {
                        report.skipped += 1;
                        continue;
                    };
                    store_cdr(&roaming.store, &partner.id, version, cdr, raw).await?
                }
            };
            if stored {
                report.stored += 1;
            }
        }
        match page.next {
            Some(next) if !seen.contains(&next) && report.pages < 10_000 => url = next,
            _ => break,
        }
    }
    tracing::info!(partner = %partner.id, module, ?report, "charging pull finished");
    Ok(report)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_2_1_1_patch_is_read_with_2_2_1_names() {
        let patch = json!({"end_datetime": "2026-01-01T10:00:00Z", "total_cost": 4.5, "kwh": 3, "status": "COMPLETED"});
        let Value::Object(patch) = patch else { unreachable!() };
        let read = patch_in_2_2_1(patch.clone(), OcpiVersion::V2_1_1);
        assert_eq!(read["end_date_time"], "2026-01-01T10:00:00Z");
        assert!(!read.contains_key("end_datetime"));
        assert_eq!(read["total_cost"], json!({"excl_vat": 4.5}));
        assert_eq!(read["kwh"], 3);
        let same = patch_in_2_2_1(patch.clone(), OcpiVersion::V2_2_1);
        assert_eq!(same, patch, "2.2.1 patches are taken as they are");
    }
}
